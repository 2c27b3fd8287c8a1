"""``lrt sae features | compare-init``: studies of a transferred SAE on the large model — latent by latent, and as
the initialisation of the large model's own SAE."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..evaluate.config import StitchConfig
from ..harvest.config import HarvestConfig
from ..models.config import LoadConfig, PairConfig
from ..sae.config import SAETrainConfig
from .common import Output, OutputRun, quiet_progress, record, show, writes_output
from .options import command


@dataclass
class SAECompareInitRun(OutputRun):
    """Train the large model's SAE from scratch and from the small model's SAE carried through the maps; FLOPs to
    the same held-out FVU, the transfer's cost charged."""

    out: str
    """Output directory (results.json, report.html, fvu_vs_flops.png, config.json)."""
    pair: PairConfig = field(default_factory=PairConfig)
    """The two models and the layer pair (the SAEs' layers)."""
    small_sae: str | None = None
    """An existing SAE of the small model (default: train one on small_tokens tokens)."""
    small_tokens: int = 100_000
    """Tokens the small SAE is trained on."""
    map_tokens: int = 60_000
    """Tokens the up and down maps are fitted on."""
    refit_tokens: int = 50_000
    """Also train from the transferred SAE with its decoder refitted in closed form on this many of the large
    model's tokens and its encoder completed (lrt.sae.transfer.refit_decoder; its FLOPs charged); 0: only scratch
    vs transferred."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    """The text (corpus, packing) and the large SAEs' token budget (tokens)."""
    sae: SAETrainConfig = field(default_factory=SAETrainConfig)
    """The recipe of all three SAEs (the large ones keep the small SAE's latents and k)."""


@writes_output
def run_compare_init(cfg: SAECompareInitRun, out: Output) -> int:
    from dataclasses import replace

    from ..io.files import atomic_write_text, to_json
    from ..pipelines.sae_init import compare_init
    from ..report.sae import init_curves_figure
    from ..sae.formats import load_sae

    quiet_progress(cfg.harvest.progress)
    given = load_sae(cfg.small_sae) if cfg.small_sae else None
    small, large = cfg.pair.load(cfg.load)
    ls, lt = cfg.pair.layers(small, large)
    h = cfg.harvest
    r = compare_init(small, large, small.layer_index(ls), large.layer_index(lt),
                     replace(h, tokens=cfg.small_tokens, seed=h.seed + 1), replace(h, tokens=cfg.map_tokens,
                                                                                   seed=h.seed + 2),
                     h, cfg.sae, cfg.sae, given, refit_tokens=cfg.refit_tokens)
    from ..report.html import STYLE
    from ..report.sae import init_page

    d = out.open()
    atomic_write_text(d / "results.json", to_json(r))
    atomic_write_text(d / "report.html", init_page(r, STYLE))
    init_curves_figure(r).savefig(d / "fvu_vs_flops.png", dpi=110)
    record(d, cfg)
    f = lambda v: "—" if v is None else f"{v:.3g}"  # noqa: E731
    pct = lambda v: "—" if v is None else f"{v:.0%}"  # noqa: E731
    refit = "refit" in r["curves"]
    show([[name, f(r["charges"][name]), f(a["scratch_flops"]), f(a["transferred_flops"]), pct(a["saving"])] +
          ([f(a["refit"]["flops"]), pct(a["refit"]["saving"])] if refit else [])
          for name, a in r["accountings"].items()],
         ["accounting", "charge", "scratch FLOPs", "transferred FLOPs", "saved"] +
         (["+ refit FLOPs", "saved"] if refit else []),
         title=f"\nFLOPs to the target FVU {r['target_fvu']:.4f} (scratch's final); zero-shot FVU of the "
               f"transferred SAE {r['zero_shot_fvu']:.4f}; results in {out}")
    wall = ", ".join(f"{k} {'—' if v is None else f'{v:.1f} s'}" for k, v in r["wall_seconds_to_target"].items())
    print(f"wall time to the target (maps and refit charged): {wall}")
    return 0


@dataclass
class SAEFeaturesRun(OutputRun):
    """Latent by latent: does the transferred SAE match the large model's own SAE, and which kinds transfer?"""

    transferred: str
    """The transferred SAE folder (lrt sae transfer)."""
    native: str
    """The large model's own SAE folder (same layer)."""
    model: str
    """The large model."""
    out: str
    """Output directory (features.json, features.html, config.json)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""
    stitch: StitchConfig = field(default_factory=StitchConfig)
    """The held-out text."""


@writes_output
def run_features(cfg: SAEFeaturesRun, out: Output) -> int:
    from ..evaluate.sae_features import feature_match
    from ..io.files import atomic_write_text, to_json
    from ..report.html import STYLE
    from ..report.sae import features_page
    from ..sae.formats import load_sae

    quiet_progress(cfg.stitch.progress)
    t, n = load_sae(cfg.transferred), load_sae(cfg.native)
    r = feature_match(cfg.load.load(cfg.model), t, n, cfg.stitch)
    d = out.open()
    atomic_write_text(d / "features.json", to_json(r))
    atomic_write_text(d / "features.html", features_page(r, STYLE))
    record(d, cfg)
    show([[k, (v["activation_corr"] or {}).get("n"), (v["activation_corr"] or {}).get("median"),
           (v["decoder_cos"] or {}).get("median")] for k, v in r["by_kind"].items()],
         ["kind", "latents", "median best activation corr", "median best decoder cos"],
         title=f"\nfeature-level transfer on {r['tokens']:,} held-out tokens: {out}/features.html")
    return 0


def register(s) -> None:
    """Add the studies to ``lrt sae``'s subcommands ``s``."""
    command(s, "features", "latent-level match of a transferred SAE with the large model's own, by kind",
            run_features, SAEFeaturesRun)
    command(s, "compare-init", "the large model's SAE from scratch vs from the transferred SAE: FLOPs to the same "
            "FVU", run_compare_init, SAECompareInitRun)
