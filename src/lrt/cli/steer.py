"""``lrt steer`` (compute a vector on one model) and ``lrt transfer`` (carry it through a map)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models.config import LoadConfig, ModelConfig
from ..steering.config import VectorConfig
from .common import Output, OutputRun, quiet_progress, record, show, writes_output
from .options import command


@dataclass
class SteerRun(OutputRun):
    """Compute a steering vector on one model at one layer."""

    out: str
    """Output directory (vector.safetensors + vector.json + config.json)."""
    model: ModelConfig
    """The model and layer."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""
    vectors: VectorConfig = field(default_factory=VectorConfig)
    """What the vector is computed from."""
    gguf: str | None = None
    """Also export a llama.cpp / repeng control vector to this file."""


@dataclass
class TransferRun(OutputRun):
    """Carry a vector through a map."""

    vector: str
    """Vector directory (from lrt steer), at the map's source layer."""
    map: str
    """Map directory (from lrt fit-map)."""
    out: str
    """Output directory."""
    mode: str = field(default="direction", metadata={"choices": ("direction", "point")})
    """direction: A·v (the bias cancels for a difference of points); point: A·v + p (as printed in the paper)."""
    rescale: bool = False
    """Rescale to ‖v‖ × the ratio of median token norms (target / source)."""


@writes_output
def steer(cfg: SteerRun, out: Output) -> int:
    from ..stats.balance import STABLE_SPLIT_HALF
    from ..steering.vectors import compute_vector

    quiet_progress(cfg.vectors.progress)
    lm = cfg.load.load(cfg.model.model)
    lm.layer_index(cfg.model.layer)
    v = compute_vector(lm, cfg.model.layer, cfg.vectors)
    d = out.open()
    v.save(d)
    record(d, cfg)
    if cfg.gguf:
        from ..steering.gguf import write_control_vector

        write_control_vector(v, cfg.gguf, model_hint=getattr(lm.model.config, "model_type", "llama"))
    half = v.meta.get("split_half_cos")
    show([["model", v.model], ["layer", v.layer], ["method", v.method], ["pairs", v.n_pairs], ["norm", v.norm],
          ["layer median token norm", v.median_norm]] + ([["split-half cos (pairs agree: near 1)", half]]
                                                         if half is not None else []),
         title=f"\nvector saved to {out}")
    if half is not None and half < STABLE_SPLIT_HALF:
        print(f"warning: the examples disagree (split-half cos {half:.2f} < {STABLE_SPLIT_HALF}): the vector is "
              "mostly their own noise; give more of them (--max-pairs)")
    return 0


@writes_output
def transfer(cfg: TransferRun, out: Output) -> int:
    from ..maps.affine import AffineMap
    from ..steering.transfer import transfer_vector
    from ..stats.balance import STABLE_SPLIT_HALF
    from ..steering.vectors import SteeringVector

    v = SteeringVector.load(cfg.vector)
    m = AffineMap.load(cfg.map)
    t = transfer_vector(v, m, cfg.mode, cfg.rescale)
    d = out.open()
    t.save(d)
    record(d, cfg)
    rows = [["from", f"{v.model} L{v.layer} (norm {v.norm:.4g})"], ["to", f"{t.model} L{t.layer} (norm {t.norm:.4g})"],
            ["mode", cfg.mode], ["map held-out R²", t.meta.get("map_heldout_r2")]]
    o = t.meta.get("outlook")
    if o:
        rows += [["outlook: expected cos(A·v, native)", o["expected_cos"]],
                 ["outlook: nearest contrast set (cos, its LOO cos)",
                  f"{o['nearest_set']} ({o['nearest_cos']:.2f}, {o['nearest_set_loo_cos']:.2f})"],
                 [f"outlook: share of v in the map's top {o['basis_directions']} contrast directions",
                  o["basis_share"]]]
    else:
        rows.append(["outlook", "none: a text map (the map for a --concept vector; refit with --contrast-sets default "
                                "for answer-token vectors)"])
    half = t.meta.get("source_split_half_cos")
    if half is not None:
        rows.append(["outlook: split-half cos of the vector on the source", half])
    show(rows, title=f"\nvector saved to {out}")
    if half is not None and half < STABLE_SPLIT_HALF:
        print(f"warning: the vector's pairs disagree (split-half cos {half:.2f} < {STABLE_SPLIT_HALF}): its direction "
              "is mostly the pairs' own noise and transfers poorly; compute it from more pairs")
    if t.meta.get("map_saw_behaviour"):
        print(f"warning: the map was fitted on this vector's own behaviour ({', '.join(t.meta['map_saw_behaviour'])});"
              " its transfer is not a held-out result: refit with --exclude")
    if t.meta.get("text_vector_on_contrast_map"):
        print("warning: this is a vector of text states (--concept) and the map was refitted on answer-token contrast "
              "differences, which carry such vectors worse than the text map they start from (Qwen pair: mean "
              "cos(A·v, native) 0.47 against 0.74 over twelve); transfer it through a map fitted without "
              "--contrast-sets")
    return 0


def register(sub) -> None:
    command(sub, "steer", "compute a steering vector on one model", steer, SteerRun)
    command(sub, "transfer", "carry a vector through a map (A·v, or A·v + p)", transfer, TransferRun)
