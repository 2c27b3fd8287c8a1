"""Bounded samples for the numbers that need rows, not moments: a uniform row reservoir, norm quantiles.

Both draw from private generators (never the global RNG).
"""

from __future__ import annotations

import torch


class Reservoir:
    """A uniform sample of at most ``cap`` paired rows (Algorithm R, seeded), for row-wise metrics."""

    def __init__(self, cap: int, seed: int = 0):
        self.cap, self.seen = cap, 0
        self.x = self.y = None
        self.g = torch.Generator().manual_seed(seed)

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        x, y = x.float().cpu(), y.float().cpu()
        if self.x is None:
            self.x = torch.empty(0, x.shape[1])
            self.y = torch.empty(0, y.shape[1])
        room = self.cap - len(self.x)
        if room > 0:
            self.x = torch.cat([self.x, x[:room]])
            self.y = torch.cat([self.y, y[:room]])
        rest = torch.arange(min(max(room, 0), len(x)), len(x))
        if len(rest):
            t = self.seen + rest
            j = (torch.rand(len(rest), generator=self.g) * (t + 1)).long()
            hit = j < self.cap
            self.x[j[hit]] = x[rest[hit]]
            self.y[j[hit]] = y[rest[hit]]
        self.seen += len(x)

    @classmethod
    def merged(cls, parts: list["Reservoir"], cap: int, seed: int = 0) -> "Reservoir":
        """One uniform sample of at most ``cap`` rows of the union of the rows ``parts`` saw (reservoirs of
        disjoint streams, e.g. one per rank): each part's rows weighted by how many rows each stands for."""
        out = cls(cap, seed)
        parts = [p for p in parts if p is not None and p.x is not None and len(p.x)]
        if not parts:
            return out
        x, y = torch.cat([p.x for p in parts]), torch.cat([p.y for p in parts])
        w = torch.cat([torch.full((len(p.x),), p.seen / len(p.x), dtype=torch.float64) for p in parts])
        take = min(cap, len(x))
        idx = torch.multinomial(w, take, replacement=False, generator=out.g) if take < len(x) else torch.arange(len(x))
        out.x, out.y, out.seen = x[idx], y[idx], sum(p.seen for p in parts)
        return out


class NormTracker:
    """Exact count/mean/max and sampled quantiles of row norms."""

    def __init__(self, cap: int = 200_000, seed: int = 0):
        self.cap, self.n, self.total, self.max = cap, 0, 0.0, 0.0
        self.sample = torch.empty(0)
        self.g = torch.Generator().manual_seed(seed)

    def update(self, norms: torch.Tensor) -> None:
        norms = norms.float().cpu()
        self.n += len(norms)
        self.total += float(norms.double().sum())
        self.max = max(self.max, float(norms.max())) if len(norms) else self.max
        self.sample = torch.cat([self.sample, norms])
        if len(self.sample) > self.cap:
            keep = torch.randperm(len(self.sample), generator=self.g)[: self.cap]
            self.sample = self.sample[keep]

    @classmethod
    def merged(cls, parts: list["NormTracker"], seed: int = 0) -> "NormTracker":
        """The tracker of the union of disjoint streams: exact count, mean and max; a sample of the samples."""
        out = cls(parts[0].cap, seed)
        out.n, out.total = sum(p.n for p in parts), sum(p.total for p in parts)
        out.max = max(p.max for p in parts)
        out.sample = torch.cat([p.sample for p in parts])
        if len(out.sample) > out.cap:
            out.sample = out.sample[torch.randperm(len(out.sample), generator=out.g)[: out.cap]]
        return out

    def median(self) -> float:
        return float(self.sample.median()) if len(self.sample) else float("nan")

    def summary(self) -> dict:
        q = lambda f: round(float(torch.quantile(self.sample, f)), 4) if len(self.sample) else None  # noqa: E731
        return {"count": self.n, "mean": round(self.total / max(1, self.n), 4), "median": q(0.5), "p99": q(0.99),
                "max": round(self.max, 4)}


def merge_over_ranks(sample: Reservoir, norms: dict, seed: int = 0) -> tuple[Reservoir, dict]:
    """Under ``torchrun``: one row sample and one norm tracker per key for the rows every rank saw (the trackers'
    counts, means and maxima exact; the samples uniform over the union, a different draw than one process makes).
    Without it: the arguments unchanged."""
    from .. import distributed

    if not distributed.active():
        return sample, norms
    parts = distributed.gather(((sample.x, sample.y, sample.seen),
                                {k: (v.n, v.total, v.max, v.sample) for k, v in norms.items()}))
    rs = []
    for (x, y, seen), _ in parts:
        r = Reservoir(0)
        r.x, r.y, r.seen = x, y, seen
        rs.append(r)
    merged = {}
    for k in norms:
        ts = []
        for _, tr in parts:
            t = NormTracker(norms[k].cap)
            t.n, t.total, t.max, t.sample = tr[k]
            ts.append(t)
        merged[k] = NormTracker.merged(ts, seed)
    return Reservoir.merged(rs, sample.cap, seed), merged
