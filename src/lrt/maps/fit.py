"""Fit an affine map between two models' layers on a corpus: harvest → statistics → solve → judge."""

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
from .metrics import evaluate_map
from .solve import select_ridge, solve_affine


MIN_HELDOUT_ROWS = 1000


def fit_map(source: LoadedModel, target: LoadedModel, source_layer: LayerSpec, target_layer: LayerSpec,
            harvest: HarvestConfig, cfg: FitConfig | None = None) -> AffineMap:
    """Harvest paired states of ``source_layer``/``target_layer`` on ``harvest.corpus`` and fit the map."""
    cfg = cfg or FitConfig()
    check_tokenizers(source.tokenizer, target.tokenizer, source.name, target.name)
    ls, lt = source.layer_index(source_layer), target.layer_index(target_layer)
    ds, dt = source.d_model, target.d_model
    dev = target.device
    train, held, held_kept = MomentStats(ds, dt, dev), MomentStats(ds, dt, dev), MomentStats(ds, dt, dev)
    shuffled = MomentStats(ds, dt, dev) if cfg.shuffled_control else None
    norms = {"source": NormTracker(seed=cfg.seed), "target": NormTracker(seed=cfg.seed + 1)}
    sample = Reservoir(cfg.heldout_sample, seed=cfg.seed)
    store = RowStore(harvest.tokens, ds, dt) if cfg.method == "adamw" else None
    gen = torch.Generator().manual_seed(cfg.seed)
    excluded = 0
    t0 = time.time()
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
    harvest_seconds = time.time() - t0
    if train.n < 2:
        raise ConfigError(f"only {train.n} training rows were harvested from {harvest.tokens:,} tokens of "
                          f"{harvest.corpus!r}; raise the token budget or use a larger corpus", option="tokens")

    t1 = time.time()
    history, ridge, ridge_table, warnings = None, cfg.ridge, None, []
    if ridge is None and held_kept.n < 2:
        ridge = min(cfg.ridge_grid)
        warnings.append(f"no held-out rows to choose the ridge on: used {ridge:g}")
    elif ridge is None:
        ridge, ridge_table = select_ridge(train, held_kept, cfg.ridge_grid)
    if cfg.method == "closed-form":
        A, p = solve_affine(train, ridge)
    else:
        if sample.x is None:
            raise ConfigError("the AdamW recipe needs held-out rows; none were harvested: raise the token budget", option="tokens")
        A, p, history = fit_adamw(store, (sample.x, sample.y), cfg.adamw, cfg.seed, harvest.progress)
        A, p = A.to(dev), p.to(dev)
    fit_seconds = time.time() - t1

    rows = (sample.x, sample.y)
    metrics = {"train": evaluate_map(A, p, train), "heldout": evaluate_map(A, p, held, rows, cfg.norm_quantile)}
    if shuffled is not None and shuffled.n > 1 and held.n > 1:
        As, ps = solve_affine(shuffled, ridge)
        metrics["shuffled_control_heldout"] = evaluate_map(As, ps, held, rows, cfg.norm_quantile)
    if held.n < MIN_HELDOUT_ROWS:
        warnings.append(f"only {held.n:,} held-out rows (fewer than {MIN_HELDOUT_ROWS:,}): the held-out metrics are "
                        "noisy or missing; raise the token budget or the held-out share")
    if tally.get("corpus_exhausted") and tally["train_tokens"] + tally["heldout_tokens"] < harvest.tokens:
        warnings.append(f"the corpus ran out after {tally['train_tokens'] + tally['heldout_tokens']:,} of the "
                        f"{harvest.tokens:,} tokens asked for")
    meta = {
        "method": cfg.method, "ridge": ridge, "ridge_selection": ridge_table,
        "max_norm_ratio": cfg.max_norm_ratio,
        "tokens": {"harvested": norms["target"].n, "train_rows": train.n, "heldout_rows": held.n,
                   "excluded_massive": excluded, "train_tokens": tally.get("train_tokens"),
                   "heldout_tokens": tally.get("heldout_tokens")},
        "document_tokens_by_source": tally.get("document_tokens_by_source"), "warnings": warnings,
        "harvest": {k: v for k, v in asdict(harvest).items() if k not in ("progress",)},
        "metrics": metrics, "norms": {k: v.summary() for k, v in norms.items()},
        "seconds": {"harvest": round(harvest_seconds, 3), "fit": round(fit_seconds, 3)},
    }
    if history is not None:
        meta["adamw_history"] = history
    return AffineMap(A=A.float().cpu(), p=p.float().cpu(), source=source.name, target=target.name,
                     source_layer=layer_name(ls), target_layer=layer_name(lt), meta=meta)
