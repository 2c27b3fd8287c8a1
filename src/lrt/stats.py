"""Streaming sufficient statistics in float64, and bounded samples for the metrics that need rows.

:class:`MomentStats` holds count, sums, XᵀX, XᵀY and YᵀY about a fixed shift (the first batch's mean,
which keeps the float64 sums well conditioned). From it come the least-squares map in either direction
and the exact squared error of any affine map on the rows it saw, so one harvest feeds many fits.
"""

from __future__ import annotations

import torch


class MomentStats:
    """Second moments of paired rows ``(x, y)``; memory ``O(d²)``, independent of the row count."""

    def __init__(self, dx: int, dy: int, device: str | torch.device = "cpu"):
        z = lambda *s: torch.zeros(*s, dtype=torch.float64, device=device)  # noqa: E731
        self.n = 0
        self.shift_x, self.shift_y = None, None
        self.sx, self.sy = z(dx), z(dy)
        self.xtx, self.xty, self.yty = z(dx, dx), z(dx, dy), z(dy, dy)

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        if len(x) == 0:
            return
        x, y = x.to(self.sx.device, torch.float64), y.to(self.sx.device, torch.float64)
        if self.shift_x is None:
            self.shift_x, self.shift_y = x.mean(0), y.mean(0)
        xc, yc = x - self.shift_x, y - self.shift_y
        self.n += len(x)
        self.sx += xc.sum(0)
        self.sy += yc.sum(0)
        self.xtx.addmm_(xc.T, xc)
        self.xty.addmm_(xc.T, yc)
        self.yty.addmm_(yc.T, yc)

    @property
    def mean_x(self) -> torch.Tensor:
        return self.shift_x + self.sx / self.n

    @property
    def mean_y(self) -> torch.Tensor:
        return self.shift_y + self.sy / self.n

    def cov_xx(self) -> torch.Tensor:
        mx = self.sx / self.n
        return self.xtx / self.n - torch.outer(mx, mx)

    def cov_xy(self) -> torch.Tensor:
        return self.xty / self.n - torch.outer(self.sx / self.n, self.sy / self.n)

    def cov_yy(self) -> torch.Tensor:
        my = self.sy / self.n
        return self.yty / self.n - torch.outer(my, my)

    def sse_per_dim(self, A: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Σ over rows of (y − A·x − p)², per output dimension, exactly, from the moments."""
        A, p = A.to(self.xtx), p.to(self.xtx)
        c = self.shift_y - A @ self.shift_x - p                  # residual = yc − A·xc + c
        a_sx = A @ self.sx
        return (self.yty.diagonal() - 2 * (A * self.xty.T).sum(1) + ((A @ self.xtx) * A).sum(1)
                + 2 * c * (self.sy - a_sx) + self.n * c * c)

    def sst_per_dim(self) -> torch.Tensor:
        return self.yty.diagonal() - self.sy ** 2 / self.n

    def transposed(self) -> "MomentStats":
        """The same statistics with x and y swapped (for the inverse map)."""
        t = MomentStats.__new__(MomentStats)
        t.n, t.shift_x, t.shift_y = self.n, self.shift_y, self.shift_x
        t.sx, t.sy, t.xtx, t.xty, t.yty = self.sy, self.sx, self.yty, self.xty.T, self.xtx
        return t


def solve_affine(stats: MomentStats, ridge: float = 1e-6) -> tuple[torch.Tensor, torch.Tensor]:
    """Ridge least squares ``y ≈ A·x + p`` by Cholesky; ``ridge`` is relative to the mean eigenvalue of Cov(x)."""
    if stats.n < 2:
        raise ValueError("need at least 2 rows to fit a map")
    cxx, cxy = stats.cov_xx(), stats.cov_xy()
    d = cxx.shape[0]
    lam = ridge * cxx.diagonal().mean().clamp_min(1e-300)
    L, info = torch.linalg.cholesky_ex(cxx + lam * torch.eye(d, dtype=cxx.dtype, device=cxx.device))
    if int(info) == 0:
        W = torch.cholesky_solve(cxy, L)
    else:  # singular (ridge 0 and rank-deficient rows): minimum-norm solution
        W = torch.linalg.pinv(cxx + lam * torch.eye(d, dtype=cxx.dtype, device=cxx.device), hermitian=True) @ cxy
    A = W.T.contiguous()
    p = stats.mean_y - A @ stats.mean_x
    return A, p


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
