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

    def median(self) -> float:
        return float(self.sample.median()) if len(self.sample) else float("nan")

    def summary(self) -> dict:
        q = lambda f: round(float(torch.quantile(self.sample, f)), 4) if len(self.sample) else None  # noqa: E731
        return {"count": self.n, "mean": round(self.total / max(1, self.n), 4), "median": q(0.5), "p99": q(0.99),
                "max": round(self.max, 4)}
