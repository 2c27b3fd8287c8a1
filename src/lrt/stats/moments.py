"""Streaming, mergeable sufficient statistics of paired rows, in float64.

:class:`MomentStats` holds the count, the means and the centred cross-product matrices
``Cxx = Σ (x − x̄)(x − x̄)ᵀ``, ``Cxy``, ``Cyy``. A batch is folded in by the pairwise update of Chan, Golub &
LeVeque (the batch's own centred moments, merged), so two :class:`MomentStats` accumulated on disjoint rows —
in two processes, on two ranks, on two halves of a corpus — :meth:`~MomentStats.merge` into exactly the
statistics of all the rows, and :meth:`~MomentStats.all_reduce` does that across ``torch.distributed`` ranks.
Centring keeps the float64 sums well conditioned even for hidden states with large means. From the
statistics come the least-squares map in either direction and the exact squared error of any affine map on
the rows they saw, so one harvest feeds many fits.
"""

from __future__ import annotations

import warnings

import torch


class MomentStats:
    """Second moments of paired rows ``(x, y)``; memory ``O(d²)``, independent of the row count."""

    def __init__(self, dx: int, dy: int, device: str | torch.device = "cpu"):
        z = lambda *s: torch.zeros(*s, dtype=torch.float64, device=device)  # noqa: E731
        self.n = 0
        self.mean_x, self.mean_y = z(dx), z(dy)
        self.cxx, self.cxy, self.cyy = z(dx, dx), z(dx, dy), z(dy, dy)

    @property
    def dx(self) -> int:
        return self.mean_x.shape[0]

    @property
    def dy(self) -> int:
        return self.mean_y.shape[0]

    @classmethod
    def of(cls, x: torch.Tensor, y: torch.Tensor, device: str | torch.device | None = None) -> "MomentStats":
        """The statistics of one batch of rows."""
        dev = device if device is not None else x.device
        s = cls(x.shape[1], y.shape[1], dev)
        if len(x) == 0:
            return s
        x, y = x.to(dev, torch.float64), y.to(dev, torch.float64)
        s.n = len(x)
        s.mean_x, s.mean_y = x.mean(0), y.mean(0)
        xc, yc = x - s.mean_x, y - s.mean_y
        s.cxx, s.cxy, s.cyy = xc.T @ xc, xc.T @ yc, yc.T @ yc
        return s

    @classmethod
    def of_sparse(cls, x: torch.Tensor, y: torch.Tensor, device: str | torch.device | None = None) -> "MomentStats":
        """The statistics of one batch whose x rows are mostly zeros (SAE codes): Σ x·xᵀ and Σ x·yᵀ are computed
        from the nonzero entries only (``torch.sparse``: O(n·k²) and O(n·k·d_y) for k nonzeros a row, not
        O(n·d_x²)), then centred; equal to :meth:`of` up to rounding."""
        dev = device if device is not None else y.device
        s = cls(x.shape[1], y.shape[1], dev)
        if len(x) == 0:
            return s
        xs = x.to(dev, torch.float64).to_sparse().coalesce()
        y = y.to(dev, torch.float64)
        s.n = len(x)
        s.mean_x = torch.sparse.sum(xs, 0).to_dense() / s.n
        s.mean_y = y.mean(0)
        xt = xs.t().coalesce()
        with warnings.catch_warnings():                 # torch's internal sparse-sparse product notes CSR is beta
            warnings.simplefilter("ignore", UserWarning)
            xx = torch.sparse.mm(xt, xs).to_dense()
        s.cxx = xx - s.n * torch.outer(s.mean_x, s.mean_x)
        s.cxy = torch.sparse.mm(xt, y) - s.n * torch.outer(s.mean_x, s.mean_y)
        yc = y - s.mean_y
        s.cyy = yc.T @ yc
        return s

    def update(self, x: torch.Tensor, y: torch.Tensor) -> None:
        """Fold in a batch of rows ``x [n, dx]``, ``y [n, dy]``."""
        if len(x):
            self.merge(MomentStats.of(x, y, self.mean_x.device))

    def merge(self, other: "MomentStats") -> "MomentStats":
        """Fold in statistics of other rows (exact: the result is the statistics of the union). Returns self."""
        if (other.dx, other.dy) != (self.dx, self.dy):
            raise ValueError(f"cannot merge statistics of widths {other.dx}×{other.dy} into {self.dx}×{self.dy}")
        if other.n == 0:
            return self
        dev = self.mean_x.device
        if self.n == 0:
            self.n = other.n
            self.mean_x, self.mean_y = other.mean_x.to(dev).clone(), other.mean_y.to(dev).clone()
            self.cxx, self.cxy, self.cyy = (t.to(dev).clone() for t in (other.cxx, other.cxy, other.cyy))
            return self
        n = self.n + other.n
        dx, dy = other.mean_x.to(dev) - self.mean_x, other.mean_y.to(dev) - self.mean_y
        f = self.n * other.n / n
        self.cxx += other.cxx.to(dev) + f * torch.outer(dx, dx)
        self.cxy += other.cxy.to(dev) + f * torch.outer(dx, dy)
        self.cyy += other.cyy.to(dev) + f * torch.outer(dy, dy)
        self.mean_x += dx * (other.n / n)
        self.mean_y += dy * (other.n / n)
        self.n = n
        return self

    def pack(self) -> torch.Tensor:
        """All statistics as one flat float64 tensor (for collectives and checkpoints); see :meth:`unpack`."""
        n = torch.tensor([float(self.n)], dtype=torch.float64, device=self.mean_x.device)
        return torch.cat([n, self.mean_x, self.mean_y, self.cxx.flatten(), self.cxy.flatten(), self.cyy.flatten()])

    @classmethod
    def unpack(cls, flat: torch.Tensor, dx: int, dy: int) -> "MomentStats":
        s = cls(dx, dy, flat.device)
        sizes = [1, dx, dy, dx * dx, dx * dy, dy * dy]
        n, mx, my, cxx, cxy, cyy = torch.split(flat.to(torch.float64), sizes)
        s.n = int(round(float(n[0])))
        s.mean_x, s.mean_y = mx.clone(), my.clone()
        s.cxx, s.cxy, s.cyy = cxx.reshape(dx, dx).clone(), cxy.reshape(dx, dy).clone(), cyy.reshape(dy, dy).clone()
        return s

    def all_reduce(self, group=None) -> "MomentStats":
        """Replace these statistics by the merge of every rank's (``torch.distributed``), in rank order, so every
        rank ends with bit-identical statistics. Memory: world size × O(d²) for the gather. Returns self."""
        import torch.distributed as dist

        flat = self.pack()
        parts = [torch.empty_like(flat) for _ in range(dist.get_world_size(group))]
        dist.all_gather(parts, flat, group=group)
        merged = MomentStats(self.dx, self.dy, self.mean_x.device)
        for part in parts:
            merged.merge(MomentStats.unpack(part, self.dx, self.dy))
        self.__dict__.update(merged.__dict__)
        return self

    def cov_xx(self) -> torch.Tensor:
        return self.cxx / self.n

    def cov_xy(self) -> torch.Tensor:
        return self.cxy / self.n

    def cov_yy(self) -> torch.Tensor:
        return self.cyy / self.n

    def sse_per_dim(self, A: torch.Tensor, p: torch.Tensor) -> torch.Tensor:
        """Σ over rows of (y − A·x − p)², per output dimension, exactly, from the moments."""
        A, p = A.to(self.cxx), p.to(self.cxx)
        c = self.mean_y - A @ self.mean_x - p                 # residual = yc − A·xc + c, and Σ xc = Σ yc = 0
        return (self.cyy.diagonal() - 2 * (A * self.cxy.T).sum(1) + ((A @ self.cxx) * A).sum(1)
                + self.n * c * c)

    def sst_per_dim(self) -> torch.Tensor:
        return self.cyy.diagonal().clone()

    def select(self, ix: torch.Tensor | None = None, iy: torch.Tensor | None = None) -> "MomentStats":
        """The statistics of a subset of the x and y columns (index tensors; ``None``: all) — exactly what
        accumulating only those columns would have given, so one harvest of many layers feeds every layer pair."""
        t = MomentStats.__new__(MomentStats)
        ix = slice(None) if ix is None else ix.to(self.cxx.device)
        iy = slice(None) if iy is None else iy.to(self.cxx.device)
        t.n, t.mean_x, t.mean_y = self.n, self.mean_x[ix], self.mean_y[iy]
        t.cxx, t.cxy, t.cyy = self.cxx[ix][:, ix], self.cxy[ix][:, iy], self.cyy[iy][:, iy]
        return t

    def linear_cka(self) -> float:
        """Linear CKA of x and y over the rows seen: ‖Cxy‖²_F / (‖Cxx‖_F ‖Cyy‖_F) on centred features
        (Kornblith et al. 2019); invariant to orthogonal transforms and isotropic scaling of either side."""
        den = torch.linalg.matrix_norm(self.cxx) * torch.linalg.matrix_norm(self.cyy)
        return float(torch.linalg.matrix_norm(self.cxy) ** 2 / den.clamp_min(1e-300))

    def transposed(self) -> "MomentStats":
        """The same statistics with x and y swapped (for the inverse map)."""
        t = MomentStats.__new__(MomentStats)
        t.n, t.mean_x, t.mean_y = self.n, self.mean_y, self.mean_x
        t.cxx, t.cxy, t.cyy = self.cyy, self.cxy.T, self.cxx
        return t
