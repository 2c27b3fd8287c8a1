"""The layer sweep as one job: one harvest → every pair judged → stitched loss of the best pairs and of the
many-to-one maps → one ``results.json`` (kind ``lrt_sweep``) that ``lrt report`` renders."""

from __future__ import annotations

import time

from tqdm.auto import tqdm

from .. import distributed
from ..evaluate.config import StitchConfig
from ..evaluate.stitch import stitch_many
from ..harvest.config import HarvestConfig
from ..io.results import SWEEP_KIND, SWEEP_FORMAT_VERSION
from ..maps.config import FitConfig, SweepConfig
from ..maps.sweep import Sweep, sweep_layers
from ..models.layers import layer_name, parse_layer_list
from ..models.load import LoadedModel


def resolve_layers(source: LoadedModel, target: LoadedModel, sweep: SweepConfig) -> tuple[list[int], list[int]]:
    """The swept layer indices, each list checked against its model (the error names the valid range)."""
    return (parse_layer_list(sweep.source_layers, source.n_layers, source.name),
            parse_layer_list(sweep.target_layers, target.n_layers, target.name))


def stitch_pairs(sw: Sweep, best_k: int) -> list[tuple[int, int]]:
    """Each source layer's ``best_k`` target layers by held-out R²."""
    out = []
    for s in sw.source_layers:
        rows = sorted((r for r in sw.pairs if r["source_index"] == s), key=lambda r: -(r["heldout_r2"] or -1e9))
        out += [(s, r["target_index"]) for r in rows[:best_k]]
    return out


def run_sweep(source: LoadedModel, target: LoadedModel, harvest: HarvestConfig, fit: FitConfig, sweep: SweepConfig,
              stitch_cfg: StitchConfig | None, stitch_best: int = 1, settings: dict | None = None,
              store: str | None = None, skip_bad_shards: bool = False) -> tuple[dict, Sweep]:
    """Sweep, then (unless ``stitch_cfg`` is None or ``stitch_best`` is 0) the stitched CE of each source layer's
    best target layers (with the inverse map: reverse and round trips) and of each of those target layers'
    many-to-one map. Returns ``(results, sweep)``."""
    t0 = time.time()
    S, T = resolve_layers(source, target, sweep)
    sw = sweep_layers(source, target, S, T, harvest, fit, sweep, store, skip_bad_shards)
    timings = {"harvest": sw.meta["seconds"]["harvest"], "solve": sw.meta["seconds"]["solve"]}
    t1 = time.time()
    many = sw.many_to_one(sweep.window, harvest.progress)
    stitched = []
    if stitch_cfg is not None and stitch_best > 0:
        pairs = stitch_pairs(sw, stitch_best)
        quiet = not harvest.progress or not distributed.is_main()
        jobs = [(sw.fit_map(a, b), sw.fit_map(a, b, inverse=True))
                for a, b in tqdm(pairs, desc="maps to stitch", unit="pair", disable=quiet)]
        targets = sorted({b for _, b in pairs})
        wide = [row for row in many if row["sources"] == "all" and
                target.layer_index(row["target_layer"]) in targets]
        jobs += [(sw.fit_map([source.layer_index(x) for x in row["source_layers"]],
                             target.layer_index(row["target_layer"])), None) for row in wide]
        scored = stitch_many(source, target, jobs, stitch_cfg)
        stitched = [_stitch_row(r, layer_name(a), layer_name(b)) for r, (a, b) in zip(scored, pairs)]
        for row, r in zip(wide, scored[len(pairs):]):
            row["stitched_ce"] = r["ce"]["source→target"]
            row["stitched_relative_increase"] = r["relative_increase"]["source→target"]
            single = [x for x in stitched if x["target_layer"] == row["target_layer"]]
            if single:
                best = min(single, key=lambda x: x["ce"]["source→target"])
                row["best_single_stitched_ce"] = best["ce"]["source→target"]
                row["stitched_ce_gain"] = round(best["ce"]["source→target"] - r["ce"]["source→target"], 6)
    timings["stitch"] = round(time.time() - t1, 3)
    timings["total"] = round(time.time() - t0, 3)
    results = {
        "kind": SWEEP_KIND, "format_version": SWEEP_FORMAT_VERSION, "command": "sweep-layers",
        "settings": settings or {},
        "models": {"source": {"name": source.name, "n_layers": source.n_layers, "d_model": source.d_model},
                   "target": {"name": target.name, "n_layers": target.n_layers, "d_model": target.d_model}},
        "source_layers": [layer_name(x) for x in S], "target_layers": [layer_name(x) for x in T],
        "pairs": [{k: v for k, v in r.items() if not k.endswith("_index")} for r in sw.pairs],
        "best_target": {str(layer_name(a)): layer_name(b) for a, b in sw.best_target().items()},
        "many_to_one": many, "stitched": stitched, "memory": sw.meta["memory"], "tokens": sw.meta["tokens"],
        "paired_by": sw.meta.get("paired_by"), "alignment": sw.meta.get("alignment"),
        "timings": timings,
    }
    return results, sw


def _stitch_row(r: dict, a, b) -> dict:
    return {"source_layer": a, "target_layer": b, "tokens": r["tokens"], "ce": r["ce"], "kl": r["kl"],
            "relative_increase": r["relative_increase"]}
