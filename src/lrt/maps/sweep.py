"""One harvest, every layer pair: which layer of the target does each source layer map to best?

The harvest captures every requested layer of both models in one pass and accumulates the centred moments of
the *concatenated* rows ``[h_S^l1 … h_S^lk]``, ``[h_T^m1 … h_T^mj]`` — the Gram blocks of every layer and the
cross blocks of every pair (:class:`~lrt.stats.moments.MomentStats`). Every one-to-one map, every inverse and
every many-to-one map (several source layers to one target layer) is then a slice of those statistics
(:meth:`Sweep.stats`), solved and judged exactly as ``lrt fit-map`` would on its own harvest — except that no
token is left out for a massive norm (that cut is per pair and cannot be shared; the robust R² below the norm
quantile is still reported). Memory is ``O((Σd)²)``; :func:`check_memory` refuses a sweep that would not fit.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field, replace

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..errors import ConfigError, ResourceError
from ..harvest.config import HarvestConfig
from ..harvest.paired import harvest_pairs
from ..models.layers import layer_name
from ..models.load import LoadedModel
from ..models.tokenizer_check import pairing
from ..stats.moments import MomentStats
from ..stats.samples import NormTracker, Reservoir, merge_over_ranks
from .affine import AffineMap
from .config import FitConfig, SweepConfig
from .judge import PairStats, solve_and_judge

GIB = 2 ** 30


def _offsets(layers: list[int], d: int) -> dict[int, torch.Tensor]:
    return {layer: torch.arange(i * d, (i + 1) * d) for i, layer in enumerate(layers)}


def memory_bytes(d_source: int, d_target: int, fit: FitConfig) -> int:
    """Bytes the sweep's statistics take: training, held-out, the shuffled control and one batch's moments
    (float64, ``Σd_S² + Σd_S·Σd_T + Σd_T²`` each), and the held-out row sample (float32)."""
    one = (d_source ** 2 + d_source * d_target + d_target ** 2) * 8
    return one * (3 + int(fit.shuffled_control)) + fit.heldout_sample * (d_source + d_target) * 4


def available_bytes(device: torch.device) -> int:
    """Free memory where the statistics live: MemAvailable (Linux) on the CPU, free memory on a GPU."""
    if device.type == "cuda":
        return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES"))


def check_memory(d_source: int, d_target: int, fit: FitConfig, sweep: SweepConfig, device: torch.device) -> dict:
    """The memory estimate; raises :class:`ResourceError` (before any harvest) when it exceeds the limit."""
    need = memory_bytes(d_source, d_target, fit)
    limit = sweep.max_memory_gb * GIB if sweep.max_memory_gb else 0.8 * available_bytes(device)
    est = {"statistics_gib": round(need / GIB, 3), "limit_gib": round(limit / GIB, 3),
           "width_source": d_source, "width_target": d_target}
    if need > limit:
        raise ResourceError(f"this sweep's statistics need {need / GIB:.1f} GiB (Σd = {d_source:,} source + "
                            f"{d_target:,} target columns, O((Σd)²) in float64) but the limit is {limit / GIB:.1f} "
                            "GiB; sweep fewer layers (a stride such as all:4) or raise the limit", option="max_memory_gb")
    return est


@dataclass
class Sweep:
    """The statistics of every swept layer of both models, and the judged one-to-one map of every pair."""

    source: str
    target: str
    source_layers: list[int]
    target_layers: list[int]
    d_source: int
    d_target: int
    stats_all: PairStats
    fit: FitConfig
    pairs: list[dict] = field(default_factory=list)
    meta: dict = field(default_factory=dict)
    solved: dict = field(default_factory=dict, repr=False)
    """The maps :meth:`fit_map` solved, by (source layers, target layer, inverse): each is solved once."""

    def stats(self, source_layers: list[int], target_layer: int) -> PairStats:
        """The statistics of the concatenated ``source_layers`` and one ``target_layer`` (a slice: no new pass)."""
        so, to = _offsets(self.source_layers, self.d_source), _offsets(self.target_layers, self.d_target)
        missing = [layer_name(x) for x in source_layers if x not in so] + ([layer_name(target_layer)]
                                                                           if target_layer not in to else [])
        if missing:
            raise ConfigError(f"layers {missing} were not in this sweep (source {self.source_layers}, target "
                              f"{self.target_layers}); sweep them first")
        return self.stats_all.select(torch.cat([so[x] for x in source_layers]), to[target_layer])

    def fit_map(self, source_layers: int | list[int], target_layer: int, inverse: bool = False) -> AffineMap:
        """The map from (the concatenation of) ``source_layers`` to ``target_layer`` — or, with ``inverse``,
        from the target layer back to a single source layer — solved and judged from the sweep's statistics."""
        layers = [source_layers] if isinstance(source_layers, int) else list(source_layers)
        key = (tuple(layers), target_layer, inverse)
        if key not in self.solved:
            self.solved[key] = self._solve(layers, target_layer, inverse)
        return self.solved[key]

    def _solve(self, layers: list[int], target_layer: int, inverse: bool) -> AffineMap:
        ps = self.stats(layers, target_layer)
        if inverse:
            if len(layers) != 1:
                raise ConfigError("an inverse map goes to one source layer")
            ps = ps.transposed()
        A, p, info = solve_and_judge(ps, self.fit)
        src_layer = [layer_name(x) for x in layers] if len(layers) > 1 else layer_name(layers[0])
        meta = {**info, "sweep": True, "harvest": self.meta.get("harvest"), "tokens": self.meta.get("tokens"),
                "tokenizers": {"paired_by": self.meta.get("paired_by")}, "alignment": self.meta.get("alignment"),
                "norms": self.meta.get("norms", {}).get(("down" if inverse else "up", layers[0], target_layer))}
        if inverse:
            return AffineMap(A.float().cpu(), p.float().cpu(), self.target, self.source, layer_name(target_layer),
                             src_layer, meta)
        return AffineMap(A.float().cpu(), p.float().cpu(), self.source, self.target, src_layer,
                         layer_name(target_layer), meta)

    def best_target(self) -> dict[int, int]:
        """For each source layer, the target layer whose map has the best held-out R²."""
        best: dict[int, dict] = {}
        for row in self.pairs:
            s = row["source_index"]
            if s not in best or _score(row) > _score(best[s]):
                best[s] = row
        return {s: r["target_index"] for s, r in best.items()}

    def many_to_one(self, window: int = 0, progress: bool = False) -> list[dict]:
        """For each target layer: the map from all swept source layers (and, with ``window``, from the window of
        that many swept layers ending at its best single layer), its held-out R² and the gain over the best
        one-to-one map."""
        rows = []
        for lt in tqdm(self.target_layers, desc="many-to-one maps", unit="layer",
                       disable=not progress or not distributed.is_main()):
            single = max((r for r in self.pairs if r["target_index"] == lt), key=_score)
            spans = {"all": self.source_layers}
            if window:
                end = self.source_layers.index(single["source_index"])
                spans[f"window {window}"] = self.source_layers[max(0, end - window + 1): end + 1]
            for label, layers in spans.items():
                if len(layers) < 2:
                    continue
                m = self.fit_map(layers, lt)
                h = m.meta["metrics"]["heldout"]
                rows.append({"target_layer": layer_name(lt), "sources": label,
                             "source_layers": [layer_name(x) for x in layers], "ridge": m.meta["ridge"],
                             "heldout_r2": h.get("r2"), "heldout_r2_below_q99": h.get("r2_below_q99"),
                             "best_single_source": single["source_layer"], "best_single_r2": single["heldout_r2"],
                             "r2_gain": None if h.get("r2") is None or single["heldout_r2"] is None
                             else round(h["r2"] - single["heldout_r2"], 6)})
        return rows


def _batches(source, target, S, T, harvest, tally, store, skip_bad):
    """``(index, {layer: source rows}, {layer: target rows}, heldout)``: this rank's batches of a live harvest or of
    a store's shards."""
    if not store:
        for b in harvest_pairs(source, target, S, T, harvest, tally, split_ranks=True):
            yield b.index, b.source, b.target, b.heldout
        return
    from ..harvest.store import ActivationStore

    st = ActivationStore(store, skip_bad=skip_bad)
    for i, name in enumerate((source.name, target.name)):
        if st.models[min(i, len(st.models) - 1)]["name"] != name:
            raise ConfigError(f"the activation store {str(store)!r} holds {[m['name'] for m in st.models]}; the "
                              f"sweep's models are {source.name!r} → {target.name!r} (harvest them in that order)",
                              option="store")
    ks, kt = {a: st.key(0, a) for a in S}, {b: st.key(1, b) for b in T}
    for index, cols, is_held in st.parts([*ks.values(), *kt.values()]):
        yield index, {a: cols[k] for a, k in ks.items()}, {b: cols[k] for b, k in kt.items()}, is_held


def _score(row: dict) -> float:
    v = row.get("heldout_r2")
    return float("-inf") if v is None else v


def sweep_layers(source: LoadedModel, target: LoadedModel, source_layers: list[int], target_layers: list[int],
                 harvest: HarvestConfig, fit: FitConfig | None = None, sweep: SweepConfig | None = None,
                 store: str | None = None, skip_bad_shards: bool = False) -> Sweep:
    """Harvest every layer in ``source_layers`` and ``target_layers`` (indices, ``-1`` = embed) in one pass and
    judge the one-to-one map of every pair (ridge chosen per pair on held-out rows). With ``store``, the rows come
    from an activation store holding those layers of the two models (its first two) instead of a harvest."""
    fit, sweep = fit or FitConfig(), sweep or SweepConfig()
    if fit.method != "closed-form":
        raise ConfigError("a sweep solves every pair in closed form from one harvest; use method closed-form",
                          option="method")
    paired_by = pairing(source.tokenizer, target.tokenizer, harvest.align, source.name, target.name)
    S, T = sorted(set(source_layers)), sorted(set(target_layers))
    ds, dt = source.d_model, target.d_model
    dev = target.device
    estimate = check_memory(ds * len(S), dt * len(T), fit, sweep, dev)
    Ds, Dt = ds * len(S), dt * len(T)
    train, held = MomentStats(Ds, Dt, dev), MomentStats(Ds, Dt, dev)
    shuffled = MomentStats(Ds, Dt, dev) if fit.shuffled_control else None
    sample = Reservoir(fit.heldout_sample, seed=fit.seed)
    norms: dict = {}
    tally: dict = {}
    t0 = time.time()
    for index, xs, ys, is_held in _batches(source, target, S, T, harvest, tally, store, skip_bad_shards):
        x = torch.cat([xs[layer].to(dev) for layer in S], 1)
        y = torch.cat([ys[layer].to(dev) for layer in T], 1)
        if is_held:
            held.update(x, y)
            sample.update(x, y)
            continue
        train.update(x, y)
        if shuffled is not None:
            gen = torch.Generator().manual_seed(fit.seed * 1_000_003 + index)   # the same on any rank
            shuffled.update(x, y[torch.randperm(len(y), generator=gen).to(y.device)])
        for side, layers, rows, d in (("source", S, x, ds), ("target", T, y, dt)):
            for i, layer in enumerate(layers):
                norms.setdefault((side, layer), NormTracker(seed=fit.seed)).update(
                    rows[:, i * d:(i + 1) * d].norm(dim=-1))
    distributed.all_reduce_stats(train, held, shuffled)       # torchrun: each rank harvested its own batches
    sample, norms = merge_over_ranks(sample, norms, fit.seed)
    if train.n < 2:
        raise ConfigError(f"only {train.n} training rows were harvested from {harvest.tokens:,} tokens of "
                          f"{harvest.corpus!r}; raise the token budget", option="tokens")
    harvest_s = time.time() - t0
    ps = PairStats(train, held, held, shuffled, sample.x, sample.y)
    summary = {k: v.summary() for k, v in norms.items()}
    pair_norms = {("up", a, b): {"source": summary[("source", a)], "target": summary[("target", b)]}
                  for a in S for b in T}
    pair_norms.update({("down", a, b): {"source": v["target"], "target": v["source"]}
                       for (_, a, b), v in list(pair_norms.items())})
    result = Sweep(source.name, target.name, S, T, ds, dt, ps, replace(fit, max_norm_ratio=None),
                   meta={"harvest": ({"store": store} if store else
                                     {k: v for k, v in asdict(harvest).items() if k != "progress"}),
                         "tokens": {"train_rows": train.n, "heldout_rows": held.n,
                                    "train_tokens": tally.get("train_tokens"),
                                    "heldout_tokens": tally.get("heldout_tokens")},
                         "paired_by": paired_by, "alignment": tally.get("alignment"),
                         "memory": estimate, "norms": pair_norms})
    t1 = time.time()
    with tqdm(total=len(S) * len(T), desc="solve", unit="pair",
              disable=not harvest.progress or not distributed.is_main()) as bar:
        for a, b in ((a, b) for a in S for b in T):
            sub = result.stats([a], b)
            A, p, info = solve_and_judge(sub, result.fit)
            h, sh = info["metrics"]["heldout"], info["metrics"].get("shuffled_control_heldout", {})
            result.pairs.append({
                "source_layer": layer_name(a), "target_layer": layer_name(b), "source_index": a, "target_index": b,
                "ridge": info["ridge"], "heldout_r2": h.get("r2"), "heldout_r2_below_q99": h.get("r2_below_q99"),
                "cosine": h.get("cosine_mean"), "shuffled_r2": sh.get("r2"),
                "train_r2": info["metrics"]["train"].get("r2"), "cka": round(sub.train.linear_cka(), 6)})
            bar.update()
    result.meta["seconds"] = {"harvest": round(harvest_s, 3), "solve": round(time.time() - t1, 3)}
    return result
