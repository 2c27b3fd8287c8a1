"""``lrt fit-map``: fit an affine map between two layers of two models on a corpus."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..harvest.config import HarvestConfig
from ..maps.config import FitConfig
from ..models.config import LoadConfig, PairConfig
from .common import Output, OutputRun, quiet_progress, record, show, writes_output
from .options import command


@dataclass
class FitMapRun(OutputRun):
    """Fit h_T ≈ A·h_S + p between a layer of the source and a layer of the target."""

    out: str
    """Output directory (map.safetensors + map.json + config.json)."""
    pair: PairConfig = field(default_factory=PairConfig)
    """The two models and the layer pair."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    """The text the map is fitted on."""
    both: bool = False
    """Also fit the inverse map (target → source) from the same statistics, saved to OUT/inverse."""
    contrast_sets: list[str] = field(default_factory=list)
    """Contrast sets to refit the map on for carrying steering vectors (A·v): 'default' (the pool shipped with lrt:
    seven behaviours in four answer formats, MMLU / TruthfulQA right vs wrong, sentiment), data set names or A/B
    files (repeatable; sets of ≥ 2 behaviours). The map is refitted on their per-pair differences, shrunk toward
    the text map (λ by leave-one-behaviour-out)."""
    exclude: list[str] = field(default_factory=list)
    """Behaviours to leave out of the contrast sets (names or files: a file counts by its content): the ones you
    will transfer, so the map never saw them (repeatable)."""
    contrast_pairs: int = 40
    """Pairs read from each contrast set."""
    chat: bool = False
    """Wrap the contrast questions in the tokenizer's chat template (instruct models)."""
    checkpoint_tokens: int = 0
    """Save the harvest's state to OUT/checkpoint.safetensors every this-many tokens (0: never; one process)."""
    resume: bool = False
    """Continue a killed fit from OUT/checkpoint.safetensors (same options): the same map as an uninterrupted run."""
    store: str | None = None
    """Fit from an activation store (lrt harvest) instead of running the models: its first model is the source,
    its second the target (--source/--target, if given, must be their names); layers default to the store's own
    when it holds one per model."""
    skip_bad_shards: bool = False
    """With --store: leave out shards whose sha256 does not match the manifest (counted in map.json) instead of
    stopping."""
    fit: FitConfig = field(default_factory=FitConfig)
    """How the map is fitted."""


@writes_output
def run(cfg: FitMapRun, out: Output) -> int:
    from .. import distributed
    from ..errors import ConfigError
    from ..maps.fit import fit_map_pair
    from ..report.tables import map_summary_rows, show_warnings

    if cfg.contrast_sets:
        from ..data.registry import check
        from ..maps.contrast import resolve_sets

        for s in cfg.contrast_sets + cfg.exclude:
            if s != "default" and not s.startswith("concept:"):
                check(s, "contrast", "contrast_sets" if s in cfg.contrast_sets else "exclude")
        kept, families, _ = resolve_sets(cfg.contrast_sets, cfg.exclude)
        if len(set(families.values())) < 2:
            raise ConfigError("give contrast sets of at least two behaviours other than the excluded ones (λ is "
                              "chosen by leaving one behaviour out), or --contrast-sets default",
                              option="contrast_sets")
    quiet_progress(cfg.harvest.progress)
    if cfg.store:
        if cfg.contrast_sets:
            raise ConfigError("the contrast refit runs the models; fit from the store, then refit without --store",
                              option="contrast_sets")
        m, inv = _from_store(cfg)
        ls, lt = m.source_layer, m.target_layer
    else:
        src, tgt = cfg.pair.load(cfg.load)
        ls, lt = cfg.pair.layers(src, tgt)
        ckpt = out.open() / "checkpoint.safetensors" if cfg.checkpoint_tokens or cfg.resume else None
        m, inv = fit_map_pair(src, tgt, ls, lt, cfg.harvest, cfg.fit, cfg.both, ckpt, cfg.checkpoint_tokens,
                              cfg.resume)
        if ckpt is not None:
            ckpt.unlink(missing_ok=True)
    if not distributed.is_main():                 # torchrun: rank 0 writes
        return 0
    if cfg.contrast_sets:
        from ..maps.contrast import fit_contrast_map

        m = fit_contrast_map(src, tgt, m, cfg.contrast_sets, cfg.contrast_pairs, cfg.chat, cfg.exclude,
                             progress=cfg.harvest.progress)
    d = out.open()
    m.save(d)
    if inv is not None:
        inv.save(d / "inverse")
    cfg.pair.source_layer, cfg.pair.target_layer = ls, lt
    record(d, cfg)
    show(map_summary_rows(m.source, m.source_layer, m.target, m.target_layer, m.meta),
         title=f"\nmap saved to {out}/map.safetensors + map.json")
    show_warnings(m.meta)
    if inv is not None:
        show(map_summary_rows(inv.source, inv.source_layer, inv.target, inv.target_layer, inv.meta),
             title=f"\ninverse map saved to {out}/inverse/")
        show_warnings(inv.meta)
    return 0


def _from_store(cfg: FitMapRun):
    from ..errors import ConfigError
    from ..harvest.store import ActivationStore
    from ..maps.fit import fit_map_from_store

    st = ActivationStore(cfg.store, verify=False)
    if len(st.models) < 2:
        raise ConfigError(f"the activation store {str(cfg.store)!r} holds one model; a map needs two (lrt harvest "
                          "--model S --model T)",
                          option="store")
    layers = []
    for i, (given, default, spec) in enumerate(((cfg.pair.source, PairConfig.source, cfg.pair.source_layer),
                                                (cfg.pair.target, PairConfig.target, cfg.pair.target_layer))):
        info = st.models[i]
        if given not in (default, info["name"]):
            raise ConfigError(f"the store's {'source' if i == 0 else 'target'} model is {info['name']!r}, not "
                              f"{given!r}", option="source" if i == 0 else "target")
        if spec is None:
            if len(info["layers"]) != 1:
                raise ConfigError(f"the store holds several layers of {info['name']!r}; choose one",
                                  option="source_layer" if i == 0 else "target_layer")
            layers.append(info["layers"][0])
        else:
            layers.append(-1 if spec == "embed" else int(spec))      # checked against the store's layers
    return fit_map_from_store(cfg.store, layers[0], layers[1], cfg.fit, cfg.both, 0, 1, cfg.skip_bad_shards)


def register(sub) -> None:
    command(sub, "fit-map", "fit an affine map h_T ≈ A·h_S + p between two layers", run, FitMapRun)
