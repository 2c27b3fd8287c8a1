"""Fit an affine map between two models' layers on a corpus: harvest → statistics → solve → judge.

:func:`fit_map` fits ``h_T ≈ A·h_S + p``; :func:`fit_map_pair` also the inverse ``h_S ≈ B·h_T + q`` from the same
statistics (no second pass), each with its own ridge choice and held-out metrics.
"""

from __future__ import annotations

import time
from dataclasses import asdict

import torch

from ..errors import ConfigError
from ..harvest.config import HarvestConfig
from ..harvest.paired import harvest_pairs
from ..harvest.rowstore import RowStore
from ..models.layers import LayerSpec, layer_name
from ..models.load import LoadedModel
from ..models.tokenizer_check import check_tokenizers
from ..stats.moments import MomentStats
from ..stats.samples import NormTracker, Reservoir
from .adamw import fit_adamw
from .affine import AffineMap
from .config import FitConfig
from .judge import MIN_HELDOUT_ROWS, PairStats, choose_ridge, judge, solve_and_judge


def fit_map(source: LoadedModel, target: LoadedModel, source_layer: LayerSpec, target_layer: LayerSpec,
            harvest: HarvestConfig, cfg: FitConfig | None = None) -> AffineMap:
    """Harvest paired states of ``source_layer``/``target_layer`` on ``harvest.corpus`` and fit the map."""
    return fit_map_pair(source, target, source_layer, target_layer, harvest, cfg, both=False)[0]


def fit_map_pair(source: LoadedModel, target: LoadedModel, source_layer: LayerSpec, target_layer: LayerSpec,
                 harvest: HarvestConfig, cfg: FitConfig | None = None, both: bool = True
                 ) -> tuple[AffineMap, AffineMap | None]:
    """``(forward, inverse)``: the map source → target and, with ``both``, target → source (closed form) from
    the same harvest."""
    cfg = cfg or FitConfig()
    if both and cfg.method != "closed-form":
        raise ConfigError("the inverse map is solved in closed form from the harvest's statistics; fit both "
                          "directions with method closed-form", option="method")
    check_tokenizers(source.tokenizer, target.tokenizer, source.name, target.name)
    ls, lt = source.layer_index(source_layer), target.layer_index(target_layer)
    t0 = time.time()
    ps, store, norms, tally, excluded = _harvest(source, target, ls, lt, harvest, cfg)
    seconds = {"harvest": round(time.time() - t0, 3)}
    t1 = time.time()
    history = None
    if cfg.method == "closed-form":
        A, p, info = solve_and_judge(ps, cfg)
    else:
        if ps.sample_x is None:
            raise ConfigError("the AdamW recipe needs held-out rows; none were harvested: raise the token budget",
                              option="tokens")
        A, p, history = fit_adamw(store, (ps.sample_x, ps.sample_y), cfg.adamw, cfg.seed, harvest.progress)
        A, p = A.to(ps.train.cxx.device), p.to(ps.train.cxx.device)
        ridge, table, notes = choose_ridge(ps, cfg)       # the shuffled control's ridge, as before
        info = {"ridge": ridge, "ridge_selection": table, "warnings": notes, "metrics": judge(A, p, ps, cfg, ridge)}
    seconds["fit"] = round(time.time() - t1, 3)
    common = {
        "method": cfg.method, "max_norm_ratio": cfg.max_norm_ratio,
        "tokens": {"harvested": norms["target"].n, "train_rows": ps.train.n, "heldout_rows": ps.held.n,
                   "excluded_massive": excluded, "train_tokens": tally.get("train_tokens"),
                   "heldout_tokens": tally.get("heldout_tokens")},
        "document_tokens_by_source": tally.get("document_tokens_by_source"),
        "harvest": {k: v for k, v in asdict(harvest).items() if k not in ("progress",)},
        "norms": {k: v.summary() for k, v in norms.items()}, "seconds": seconds,
    }
    warnings = _warnings(ps, harvest, tally)
    forward = _make(A, p, info, common, warnings, source.name, target.name, ls, lt)
    if history is not None:
        forward.meta["adamw_history"] = history
    inverse = None
    if both:
        B, q, inv_info = solve_and_judge(ps.transposed(), cfg)
        inv_common = {**common, "norms": {"source": common["norms"]["target"], "target": common["norms"]["source"]},
                      "inverse_of": {"source": source.name, "target": target.name}}
        inverse = _make(B, q, inv_info, inv_common, warnings, target.name, source.name, lt, ls)
    return forward, inverse


def _make(A, p, info: dict, common: dict, warnings: list[str], source: str, target: str, ls: int, lt: int
          ) -> AffineMap:
    meta = {**common, "ridge": info["ridge"], "ridge_selection": info["ridge_selection"],
            "warnings": info["warnings"] + warnings, "metrics": info["metrics"]}
    return AffineMap(A=A.float().cpu(), p=p.float().cpu(), source=source, target=target,
                     source_layer=layer_name(ls), target_layer=layer_name(lt), meta=meta)


def _warnings(ps: PairStats, harvest: HarvestConfig, tally: dict) -> list[str]:
    out = []
    if ps.held.n < MIN_HELDOUT_ROWS:
        out.append(f"only {ps.held.n:,} held-out rows (fewer than {MIN_HELDOUT_ROWS:,}): the held-out metrics are "
                   "noisy or missing; raise the token budget or the held-out share")
    if tally.get("corpus_exhausted") and tally["train_tokens"] + tally["heldout_tokens"] < harvest.tokens:
        out.append(f"the corpus ran out after {tally['train_tokens'] + tally['heldout_tokens']:,} of the "
                   f"{harvest.tokens:,} tokens asked for")
    return out


def _harvest(source: LoadedModel, target: LoadedModel, ls: int, lt: int, harvest: HarvestConfig, cfg: FitConfig):
    ds, dt = source.d_model, target.d_model
    dev = target.device
    train, held, held_kept = MomentStats(ds, dt, dev), MomentStats(ds, dt, dev), MomentStats(ds, dt, dev)
    shuffled = MomentStats(ds, dt, dev) if cfg.shuffled_control else None
    norms = {"source": NormTracker(seed=cfg.seed), "target": NormTracker(seed=cfg.seed + 1)}
    sample = Reservoir(cfg.heldout_sample, seed=cfg.seed)
    store = RowStore(harvest.tokens, ds, dt) if cfg.method == "adamw" else None
    gen = torch.Generator().manual_seed(cfg.seed)
    excluded = 0
    tally: dict = {}
    for batch in harvest_pairs(source, target, [ls], [lt], harvest, tally):
        x, y = batch.source[ls].to(dev), batch.target[lt]
        nx, ny = x.norm(dim=-1), y.norm(dim=-1)
        norms["source"].update(nx)
        norms["target"].update(ny)
        keep = None
        if cfg.max_norm_ratio:
            keep = (nx <= cfg.max_norm_ratio * norms["source"].median()) & \
                   (ny <= cfg.max_norm_ratio * norms["target"].median())
        if batch.heldout:
            held.update(x, y)
            held_kept.update(*((x, y) if keep is None else (x[keep], y[keep])))
            sample.update(x, y)
            continue
        if keep is not None:
            excluded += int((~keep).sum())
            x, y = x[keep], y[keep]
        train.update(x, y)
        if shuffled is not None:
            shuffled.update(x, y[torch.randperm(len(y), generator=gen).to(y.device)])
        if store is not None:
            store.append(x, y)
    if train.n < 2:
        raise ConfigError(f"only {train.n} training rows were harvested from {harvest.tokens:,} tokens of "
                          f"{harvest.corpus!r}; raise the token budget or use a larger corpus", option="tokens")
    return PairStats(train, held, held_kept, shuffled, sample.x, sample.y), store, norms, tally, excluded
