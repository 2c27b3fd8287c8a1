"""``lrt fit-map``: fit an affine map between two layers of two models on a corpus."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..harvest.config import HarvestConfig
from ..maps.config import FitConfig
from ..models.config import LoadConfig, PairConfig
from .common import check_output, output_dir, quiet_progress, record, show
from .options import command


@dataclass
class FitMapRun:
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
    """A/B contrast files (CAA format) of behaviours *other* than the ones you will transfer (repeatable, ≥ 2): the
    map is refitted on their answer-token differences, shrunk toward the text map (λ by leave-one-set-out); for
    carrying steering vectors (A·v) between instruct models."""
    contrast_pairs: int = 60
    """Pairs read from each contrast file."""
    chat: bool = False
    """Wrap the contrast questions in the tokenizer's chat template (instruct models)."""
    fit: FitConfig = field(default_factory=FitConfig)
    """How the map is fitted."""


def run(cfg: FitMapRun) -> int:
    from ..maps.fit import fit_map_pair
    from ..report.tables import map_summary_rows

    check_output(cfg.out)
    if len(cfg.contrast_sets) == 1:
        from ..errors import ConfigError

        raise ConfigError("give at least two contrast sets (λ is chosen by leaving one out)", option="contrast_sets")
    quiet_progress(cfg.harvest.progress)
    src, tgt = cfg.pair.load(cfg.load)
    ls, lt = cfg.pair.layers(src, tgt)
    m, inv = fit_map_pair(src, tgt, ls, lt, cfg.harvest, cfg.fit, both=cfg.both)
    if cfg.contrast_sets:
        from ..maps.contrast import fit_contrast_map

        m = fit_contrast_map(src, tgt, m, cfg.contrast_sets, cfg.contrast_pairs, cfg.chat)
    out = output_dir(cfg.out)
    m.save(out)
    if inv is not None:
        inv.save(out / "inverse")
    cfg.pair.source_layer, cfg.pair.target_layer = ls, lt
    record(out, cfg)
    show(map_summary_rows(m.source, m.source_layer, m.target, m.target_layer, m.meta),
         title=f"\nmap saved to {out}/map.safetensors + map.json")
    if inv is not None:
        show(map_summary_rows(inv.source, inv.source_layer, inv.target, inv.target_layer, inv.meta),
             title=f"\ninverse map saved to {out}/inverse/")
    return 0


def register(sub) -> None:
    command(sub, "fit-map", "fit an affine map h_T ≈ A·h_S + p between two layers", run, FitMapRun)
