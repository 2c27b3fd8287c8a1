"""The running state of a map's harvest: training / held-out / shuffled-control moments, the held-out row
sample, norm trackers and the massive-activation cut — folded batch by batch, merged over torchrun ranks, and saved
to / restored from a checkpoint (``lrt fit-map --checkpoint-tokens``, ``--resume``) so a killed fit continues to the
identical map."""

from __future__ import annotations

from pathlib import Path

import torch

from .. import distributed
from ..errors import ConfigError
from ..harvest.rowstore import RowStore
from ..io.checkpoint import load_checkpoint, save_checkpoint
from ..stats.moments import MomentStats
from ..stats.samples import NormTracker, Reservoir, merge_over_ranks
from .config import FitConfig
from .judge import PairStats

MOMENTS = ("train", "held", "held_kept", "shuffled")


class NormCut:
    """The massive-activation cut: rows whose norm exceeds ``ratio`` × the median norm of the stream's first batch
    (batch 0; rank 0 measures it and every rank receives it), so the cut is the same however the batches are
    spread over ranks."""

    def __init__(self, ratio: float | None):
        self.ratio, self.limits, self.done = ratio, None, not ratio

    def calibrate(self, index: int | None, nx: torch.Tensor | None = None, ny: torch.Tensor | None = None) -> None:
        if self.done:
            return
        mine = None
        if index == 0:
            mine = (self.ratio * float(nx.median()), self.ratio * float(ny.median()))
        elif distributed.rank() == 0:             # rank 0 without batch 0: an empty stream, nothing to cut
            mine = (float("inf"), float("inf"))
        self.limits, self.done = distributed.broadcast(mine), True

    def keep(self, nx: torch.Tensor, ny: torch.Tensor) -> torch.Tensor | None:
        return None if self.limits is None else (nx <= self.limits[0]) & (ny <= self.limits[1])


class FitAccumulator:
    """Everything a map's harvest accumulates. Randomness is seeded per batch index, so ranks (and a resumed run)
    reproduce the single uninterrupted process."""

    def __init__(self, ds: int, dt: int, dev, cfg: FitConfig, capacity: int = 0):
        self.cfg, self.ds, self.dt, self.dev = cfg, ds, dt, dev
        self.train, self.held, self.held_kept = (MomentStats(ds, dt, dev) for _ in range(3))
        self.shuffled = MomentStats(ds, dt, dev) if cfg.shuffled_control else None
        self.norms = {"source": NormTracker(seed=cfg.seed), "target": NormTracker(seed=cfg.seed + 1)}
        self.sample = Reservoir(cfg.heldout_sample, seed=cfg.seed)
        self.store = RowStore(capacity, ds, dt) if cfg.method == "adamw" else None
        self.cut = NormCut(cfg.max_norm_ratio)
        self.excluded = 0

    def add(self, index: int, x: torch.Tensor, y: torch.Tensor, is_held: bool) -> None:
        nx, ny = x.norm(dim=-1), y.norm(dim=-1)
        self.cut.calibrate(index, nx, ny)
        self.norms["source"].update(nx)
        self.norms["target"].update(ny)
        keep = self.cut.keep(nx, ny)
        if is_held:
            self.held.update(x, y)
            self.held_kept.update(*((x, y) if keep is None else (x[keep], y[keep])))
            self.sample.update(x, y)
            return
        if keep is not None:
            self.excluded += int((~keep).sum())
            x, y = x[keep], y[keep]
        self.train.update(x, y)
        if self.shuffled is not None:
            g = torch.Generator().manual_seed(self.cfg.seed * 1_000_003 + index)
            self.shuffled.update(x, y[torch.randperm(len(y), generator=g).to(y.device)])
        if self.store is not None:
            self.store.append(x, y)

    def finish(self) -> tuple[PairStats, RowStore | None, dict, int]:
        """Merge over ranks; ``(PairStats, RowStore | None, norms, excluded)``."""
        self.cut.calibrate(None)
        sample, norms, excluded = self.sample, self.norms, self.excluded
        if distributed.active():
            if self.store is not None:
                raise ConfigError("the AdamW recipe runs in one process; use the closed form under torchrun",
                                  option="method")
            distributed.all_reduce_stats(self.train, self.held, self.held_kept, self.shuffled)
            excluded = distributed.sum_int(excluded)
            sample, norms = merge_over_ranks(sample, norms, self.cfg.seed)
        return (PairStats(self.train, self.held, self.held_kept, self.shuffled, sample.x, sample.y), self.store,
                norms, excluded)

    def save(self, path: Path, position: int, fingerprint: dict) -> None:
        """Checkpoint after ``position`` batches of the stream."""
        t = {name: getattr(self, name).pack() for name in MOMENTS if getattr(self, name) is not None}
        t["sample_rng"] = self.sample.g.get_state()
        if self.sample.x is not None:
            t["sample_x"], t["sample_y"] = self.sample.x, self.sample.y
        for k, nt in self.norms.items():
            t[f"norm.{k}.sample"], t[f"norm.{k}.rng"] = nt.sample, nt.g.get_state()
        state = {"position": position, "fingerprint": fingerprint, "excluded": self.excluded,
                 "limits": self.cut.limits, "cut_done": self.cut.done, "sample_seen": self.sample.seen,
                 "norms": {k: [nt.n, nt.total, nt.max] for k, nt in self.norms.items()}}
        save_checkpoint(path, t, state)

    def restore(self, path: Path, fingerprint: dict) -> int:
        """Load a checkpoint of the same fit; returns the stream position to continue from."""
        t, state = load_checkpoint(path, fingerprint, "fit")
        for name in MOMENTS:
            if name in t:
                setattr(self, name, MomentStats.unpack(t[name], self.ds, self.dt))
        self.sample.g.set_state(t["sample_rng"])
        self.sample.seen = state["sample_seen"]
        if "sample_x" in t:
            self.sample.x, self.sample.y = t["sample_x"], t["sample_y"]
        for k, nt in self.norms.items():
            nt.sample = t[f"norm.{k}.sample"]
            nt.g.set_state(t[f"norm.{k}.rng"])
            nt.n, nt.total, nt.max = state["norms"][k]
        self.excluded = state["excluded"]
        self.cut.limits = None if state["limits"] is None else tuple(state["limits"])
        self.cut.done = state["cut_done"]
        return int(state["position"])
