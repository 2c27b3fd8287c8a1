"""Fit an affine map between two models' layers on a corpus: harvest → statistics → solve → judge.

:func:`fit_map` fits ``h_T ≈ A·h_S + p``; :func:`fit_map_pair` also the inverse ``h_S ≈ B·h_T + q`` from the same
statistics (no second pass), each with its own ridge choice and held-out metrics.
"""

from __future__ import annotations

import time
from dataclasses import asdict
from pathlib import Path

from .. import distributed
from ..errors import ConfigError
from ..harvest.config import HarvestConfig
from ..harvest.paired import harvest_pairs
from ..models.layers import LayerSpec, layer_name
from ..models.load import LoadedModel
from ..models.tokenizer_check import pairing, tokenizer_fingerprint
from .adamw import fit_adamw
from .accumulate import FitAccumulator
from .affine import AffineMap
from .config import FitConfig
from .judge import MIN_HELDOUT_ROWS, PairStats, choose_ridge, judge, solve_and_judge


def fit_map(source: LoadedModel, target: LoadedModel, source_layer: LayerSpec, target_layer: LayerSpec,
            harvest: HarvestConfig, cfg: FitConfig | None = None) -> AffineMap:
    """Harvest paired states of ``source_layer``/``target_layer`` on ``harvest.corpus`` and fit the map."""
    return fit_map_pair(source, target, source_layer, target_layer, harvest, cfg, both=False)[0]


def fit_map_pair(source: LoadedModel, target: LoadedModel, source_layer: LayerSpec, target_layer: LayerSpec,
                 harvest: HarvestConfig, cfg: FitConfig | None = None, both: bool = True,
                 checkpoint: str | Path | None = None, checkpoint_tokens: int = 0, resume: bool = False
                 ) -> tuple[AffineMap, AffineMap | None]:
    """``(forward, inverse)``: the map source → target and, with ``both``, target → source (closed form) from
    the same harvest. Under ``torchrun`` each rank harvests its share of the batches and the statistics are
    all-reduced; every rank returns the same maps (rank 0's alone carry the held-out row-sample metrics).
    ``checkpoint`` + ``checkpoint_tokens``: the harvest's state is saved there every that-many tokens (one
    process); ``resume`` continues from it, to the map an uninterrupted run gives."""
    cfg = cfg or FitConfig()
    _check_both(both, cfg)
    paired_by = pairing(source.tokenizer, target.tokenizer, harvest.align, source.name, target.name)
    ls, lt = source.layer_index(source_layer), target.layer_index(target_layer)
    if (checkpoint_tokens or resume) and (distributed.active() or cfg.method != "closed-form"):
        raise ConfigError("fit checkpoints are for one process and the closed form; under torchrun, harvest to a "
                          "store (lrt harvest, resumable) and fit from it", option="checkpoint_tokens")
    t0 = time.time()
    tally: dict = {}
    acc = FitAccumulator(source.d_model, target.d_model, target.device, cfg, harvest.tokens)
    fingerprint = {"source": source.name, "target": target.name, "layers": [ls, lt], "fit": asdict(cfg),
                   "harvest": {k: v for k, v in asdict(harvest).items() if k != "progress"}}
    start = acc.restore(Path(checkpoint), fingerprint) if resume else 0
    last = start
    for index, x, y, is_held in _live_batches(source, target, ls, lt, harvest, tally, start):
        acc.add(index, x, y, is_held)
        if checkpoint is not None and checkpoint_tokens and \
                (index + 1 - last) * harvest.batch_size * harvest.context >= checkpoint_tokens:
            acc.save(Path(checkpoint), index + 1, fingerprint)
            last = index + 1
    ps, store, norms, excluded = acc.finish()
    if ps.train.n < 2:
        raise ConfigError(f"only {ps.train.n} training rows were harvested from {harvest.tokens:,} tokens of "
                          f"{harvest.corpus!r}; raise the token budget or use a larger corpus", option="tokens")
    data = {"harvest": {k: v for k, v in asdict(harvest).items() if k not in ("progress",)},
            "document_tokens_by_source": tally.get("document_tokens_by_source"),
            "train_tokens": tally.get("train_tokens"), "heldout_tokens": tally.get("heldout_tokens"),
            "model_fingerprints": {"source": source.fingerprint, "target": target.fingerprint},
            "tokenizers": {"source": tokenizer_fingerprint(source.tokenizer),
                           "target": tokenizer_fingerprint(target.tokenizer), "paired_by": paired_by},
            "alignment": tally.get("alignment")}
    warnings = _warnings(ps, harvest, tally)
    return _solve(ps, store, norms, excluded, data, warnings, (source.name, target.name), (ls, lt), cfg, both,
                  round(time.time() - t0, 3), harvest.progress)


def fit_map_from_store(path, source_layer: int, target_layer: int, cfg: FitConfig | None = None,
                       both: bool = False, source: str | int = 0, target: str | int = 1,
                       skip_bad_shards: bool = False) -> tuple[AffineMap, AffineMap | None]:
    """The same fit from an activation store (``lrt harvest``) instead of running the models: ``source`` and
    ``target`` name the store's models (index or recorded name). Shards are read one at a time (bounded memory),
    each checked against its sha256; under ``torchrun`` each rank reads its own shards."""
    from ..harvest.store import ActivationStore

    cfg = cfg or FitConfig()
    _check_both(both, cfg)
    st = ActivationStore(path, skip_bad=skip_bad_shards)
    kx, ky = st.key(source, source_layer), st.key(target, target_layer)
    t0 = time.time()

    acc = FitAccumulator(st.width(kx), st.width(ky), "cpu", cfg, st.rows)
    for index, cols, is_held in st.parts([kx, ky]):
        acc.add(index, cols[kx], cols[ky], is_held)
    ps, store, norms, excluded = acc.finish()
    bad = distributed.gather(st.bad)
    st.bad = sorted({b for part in bad for b in part})
    if ps.train.n < 2:
        raise ConfigError(f"the activation store {str(path)!r} gave only {ps.train.n} training rows",
                          option="store")
    names = tuple(st.models[int(k.split(".")[0])]["name"] for k in (kx, ky))
    data = {"store": st.summary(), "harvest": st.manifest["harvest"],
            "train_tokens": None, "heldout_tokens": None, "document_tokens_by_source":
            st.manifest.get("tally", {}).get("document_tokens_by_source")}
    warnings = _warnings(ps, None, {})
    if st.bad:
        warnings.append(f"{len(st.bad)} bad shard(s) skipped: {', '.join(st.bad)}")
    return _solve(ps, store, norms, excluded, data, warnings, names, (source_layer, target_layer), cfg, both,
                  round(time.time() - t0, 3), False)


def _check_both(both: bool, cfg: FitConfig) -> None:
    if both and cfg.method != "closed-form":
        raise ConfigError("the inverse map is solved in closed form from the harvest's statistics; fit both "
                          "directions with method closed-form", option="method")


def _solve(ps: PairStats, store, norms: dict, excluded: int, data: dict, warnings: list[str], names: tuple,
           layers: tuple, cfg: FitConfig, both: bool, harvest_seconds: float, progress: bool):
    seconds = {"harvest": harvest_seconds}
    t1 = time.time()
    history = None
    if cfg.method == "closed-form":
        A, p, info = solve_and_judge(ps, cfg)
    else:
        if ps.sample_x is None:
            raise ConfigError("the AdamW recipe needs held-out rows; none were harvested: raise the token budget",
                              option="tokens")
        A, p, history = fit_adamw(store, (ps.sample_x, ps.sample_y), cfg.adamw, cfg.seed, progress)
        A, p = A.to(ps.train.cxx.device), p.to(ps.train.cxx.device)
        ridge, table, notes = choose_ridge(ps, cfg)       # the shuffled control's ridge, as before
        info = {"ridge": ridge, "ridge_selection": table, "warnings": notes, "metrics": judge(A, p, ps, cfg, ridge)}
    seconds["fit"] = round(time.time() - t1, 3)
    common = {
        "method": cfg.method, "max_norm_ratio": cfg.max_norm_ratio,
        "tokens": {"harvested": norms["target"].n, "train_rows": ps.train.n, "heldout_rows": ps.held.n,
                   "excluded_massive": excluded, "train_tokens": data.pop("train_tokens"),
                   "heldout_tokens": data.pop("heldout_tokens")},
        **data, "norms": {k: v.summary() for k, v in norms.items()}, "seconds": seconds,
    }
    if distributed.active():
        common["ranks"] = distributed.world()
    (sn, tn), (ls, lt) = names, layers
    forward = _make(A, p, info, common, warnings, sn, tn, ls, lt)
    if history is not None:
        forward.meta["adamw_history"] = history
    inverse = None
    if both:
        B, q, inv_info = solve_and_judge(ps.transposed(), cfg)
        inv_common = {**common, "norms": {"source": common["norms"]["target"], "target": common["norms"]["source"]},
                      "inverse_of": {"source": sn, "target": tn}}
        if "model_fingerprints" in common:
            fp = common["model_fingerprints"]
            inv_common["model_fingerprints"] = {"source": fp["target"], "target": fp["source"]}
        inverse = _make(B, q, inv_info, inv_common, warnings, tn, sn, lt, ls)
    return forward, inverse


def _make(A, p, info: dict, common: dict, warnings: list[str], source: str, target: str, ls: int, lt: int
          ) -> AffineMap:
    meta = {**common, "ridge": info["ridge"], "ridge_selection": info["ridge_selection"],
            "warnings": info["warnings"] + warnings, "metrics": info["metrics"]}
    return AffineMap(A=A.float().cpu(), p=p.float().cpu(), source=source, target=target,
                     source_layer=layer_name(ls), target_layer=layer_name(lt), meta=meta)


def _warnings(ps: PairStats, harvest: HarvestConfig | None, tally: dict) -> list[str]:
    out = []
    if ps.held.n < MIN_HELDOUT_ROWS:
        out.append(f"only {ps.held.n:,} held-out rows (fewer than {MIN_HELDOUT_ROWS:,}): the held-out metrics are "
                   "noisy or missing; raise the token budget or the held-out share")
    got = (tally.get("train_tokens") or 0) + (tally.get("heldout_tokens") or 0)
    if harvest is not None and tally.get("corpus_exhausted") and got < harvest.tokens:
        out.append(f"the corpus ran out after {got:,} of the {harvest.tokens:,} tokens asked for")
    return out


def _live_batches(source: LoadedModel, target: LoadedModel, ls: int, lt: int, harvest: HarvestConfig, tally: dict,
                  start: int = 0):
    """``(index, x, y, heldout)`` per batch of the paired harvest (this rank's batches under torchrun), from batch
    ``start`` on."""
    for batch in harvest_pairs(source, target, [ls], [lt], harvest, tally, split_ranks=True, start=start):
        yield batch.index, batch.source[ls].to(target.device), batch.target[lt], batch.heldout
