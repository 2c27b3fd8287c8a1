"""``lrt sweep-layers``: one harvest, every layer pair — R², CKA, stitched loss, many-to-one; ``lrt stitch``."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..evaluate.config import StitchConfig
from ..harvest.config import HarvestConfig
from ..maps.config import FitConfig, SweepConfig
from ..models.config import LoadConfig
from ..report.tables import short_name
from .common import Output, OutputRun, quiet_progress, record, show, writes_output
from .options import command


@dataclass
class SweepRun(OutputRun):
    """Which layer of the target does each source layer map to? One harvest of every requested layer, every pair
    judged, the best pairs stitched."""

    out: str
    """Output directory (results.json, heatmap.png, report.html, config.json, maps/ of the best pairs)."""
    source: str = "zoo-xs"
    """Small model: hub id (org/name), local directory, .gguf file or zoo name."""
    target: str = "zoo-m"
    """Large model, with the same tokenizer."""
    stitch_best: int = 1
    """Stitched loss for each source layer's best k target layers by held-out R² (0: none)."""
    save_maps: bool = True
    """Save each stitched pair's map and inverse under OUT/maps/."""
    store: str | None = None
    """Read the rows from an activation store holding the swept layers of --source and --target (lrt harvest
    --model SOURCE --model TARGET) instead of harvesting; the models still score the stitched loss."""
    skip_bad_shards: bool = False
    """With --store: leave out shards whose sha256 does not match instead of stopping."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    sweep: SweepConfig = field(default_factory=SweepConfig)
    """The layers swept and the memory limit."""
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    """The text the maps are fitted on."""
    fit: FitConfig = field(default_factory=FitConfig)
    """How each map is fitted (closed form; the ridge chosen per pair on held-out rows)."""
    stitch: StitchConfig = field(default_factory=StitchConfig)
    """The held-out text the stitched models are scored on."""


@writes_output
def run_sweep_cmd(cfg: SweepRun, out: Output) -> int:
    from ..io.files import atomic_write_text, to_json
    from ..io.config import flatten
    from ..models.layers import layer_name
    from ..pipelines.sweep import resolve_layers, run_sweep, stitch_pairs
    from ..report.html import render
    from ..report.tables import pairing_text
    from ..report.sweep import (heatmap_figure, many_summary_rows, MANY_SUMMARY_HEADERS, pairs_rows, PAIR_HEADERS,
                                stitched_rows, STITCH_HEADERS)

    quiet_progress(cfg.harvest.progress)
    src, tgt = cfg.load.load(cfg.source), cfg.load.load(cfg.target)
    resolve_layers(src, tgt, cfg.sweep)                    # layer errors before any harvest
    results, sw = run_sweep(src, tgt, cfg.harvest, cfg.fit, cfg.sweep, cfg.stitch, cfg.stitch_best, flatten(cfg),
                            cfg.store, cfg.skip_bad_shards)
    from .. import distributed

    if not distributed.is_main():                 # torchrun: every rank harvested its share; rank 0 writes
        return 0
    d = out.open()
    atomic_write_text(d / "results.json", to_json(results))
    heatmap_figure(results).savefig(d / "heatmap.png", dpi=110, bbox_inches="tight")
    atomic_write_text(d / "report.html", render(results))
    if cfg.save_maps:
        for a, b in stitch_pairs(sw, cfg.stitch_best):
            m = d / "maps" / f"{layer_name(a)}-{layer_name(b)}"
            sw.fit_map(a, b).save(m)
            sw.fit_map(a, b, inverse=True).save(m / "inverse")
    record(d, cfg)
    show(pairs_rows(results), PAIR_HEADERS, title=f"\nlayer sweep: {short_name(src.name)} → {short_name(tgt.name)} "
         f"({results['timings']['total']:.0f} s); positions paired "
         f"{pairing_text(results.get('paired_by'), results.get('alignment'))}")
    if results["stitched"]:
        show(stitched_rows(results), STITCH_HEADERS, title="\nstitched next-token cross-entropy (held-out text)")
    if results["many_to_one"]:
        show(many_summary_rows(results), MANY_SUMMARY_HEADERS,
             title="\nmany-to-one maps: each target layer from several source layers, against its best single one")
    print(f"\nresults: {out}/results.json, {out}/report.html, {out}/heatmap.png")
    return 0


@dataclass
class StitchRun(OutputRun):
    """Stitched next-token loss of a map: the target with its layer replaced by the mapped source state."""

    map: str
    """Map directory (from lrt fit-map or lrt sweep-layers)."""
    out: str
    """Output directory (stitch.json + config.json)."""
    inverse: str | None = None
    """Inverse map directory (target → source) for the reverse and the round trips. Default: MAP/inverse if it
    exists (lrt fit-map --both)."""
    source: str | None = None
    """Small model. Default: the map's source."""
    target: str | None = None
    """Large model. Default: the map's target."""
    allow_other_models: bool = False
    """Stitch models whose names differ from the map's (same widths)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    stitch: StitchConfig = field(default_factory=StitchConfig)
    """The held-out text scored."""


@writes_output
def run_stitch(cfg: StitchRun, out: Output) -> int:
    from ..errors import DimensionMismatchError
    from ..evaluate.stitch import stitch
    from ..io.files import atomic_write_text, to_json
    from ..maps.affine import AffineMap, load_inverse
    from ..models.identity import same_model
    from ..report.tables import percent

    quiet_progress(cfg.stitch.progress)
    up = AffineMap.load(cfg.map)
    down = load_inverse(up, cfg.map, cfg.inverse)          # before any model loads: the inverse of this very map
    fingerprints = up.meta.get("model_fingerprints") or {}
    renamed = False                    # the map's own model, written another way (a relative path, a copy)
    for name, given, mine in (("source", cfg.source, up.source), ("target", cfg.target, up.target)):
        if given and given != mine and not cfg.allow_other_models:
            if not same_model(given, mine, None, fingerprints.get(name)):
                raise DimensionMismatchError(f"the map's {name} model is {mine!r}, not {given!r}; give the map's "
                                             "models (or allow other models)", option=name)
            renamed = True
    src = cfg.load.load(cfg.source or up.source)
    tgt = cfg.load.load(cfg.target or up.target)
    r = stitch(src, tgt, up, down, cfg.stitch, cfg.allow_other_models or renamed)
    d = out.open()
    atomic_write_text(d / "stitch.json", to_json(r))
    record(d, cfg)
    rows = [[k, v, r["kl"].get(k), percent(r["relative_increase"].get(k)), r["recipient"].get(k)]
            for k, v in r["ce"].items()]
    show(rows, ["model", "CE (nats/token)", "KL to recipient", "+ over recipient (%)", "recipient"],
         title=f"\nstitched loss: {short_name(src.name)} L{up.source_layer} → {short_name(tgt.name)} "
               f"L{up.target_layer}, {r['tokens']:,} held-out tokens" + (
                   f" (across tokenizers: replaced and scored at aligned positions only, "
                   f"{r['replaced_share_of_target_tokens']:.0%} of the target's tokens)"
                   if r.get("positions") == "aligned" else ""))
    print(f"\nresults: {out}/stitch.json")
    return 0


def register(sub) -> None:
    command(sub, "sweep-layers", "fit every (source layer, target layer) map from one harvest: R², CKA, stitched "
            "loss of the best pairs, many-to-one maps", run_sweep_cmd, SweepRun,
            exclude=("method", "max_norm_ratio", "epochs", "lr", "adamw_batch_size", "weight_decay", "eval_every"))
    command(sub, "stitch", "stitched next-token loss of a map (and its inverse: reverse, round trips)", run_stitch,
            StitchRun)
