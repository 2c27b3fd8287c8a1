"""The closed-form ridge solution of ``y ≈ A·x + p`` from :class:`~lrt.stats.moments.MomentStats`."""

from __future__ import annotations

import torch

from ..stats.moments import MomentStats


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


RIDGE_GRID = (1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0)


def heldout_r2(A: torch.Tensor, p: torch.Tensor, held: MomentStats) -> float:
    """R² = 1 − FVU of ``y ≈ A·x + p`` on the rows of ``held``, exactly, from the moments."""
    return float(1 - held.sse_per_dim(A, p).sum() / held.sst_per_dim().sum().clamp_min(1e-300))


def select_ridge(train: MomentStats, held: MomentStats, grid=RIDGE_GRID) -> tuple[float, list[dict]]:
    """The ridge of ``grid`` whose map, solved on ``train``, has the best R² on the held-out rows ``held`` — every
    candidate from the same statistics, so the choice costs one solve per value and no extra pass."""
    if held.n < 2:
        raise ValueError("choosing the ridge needs held-out rows")
    table = []
    for ridge in grid:
        A, p = solve_affine(train, ridge)
        table.append({"ridge": ridge, "heldout_r2": round(heldout_r2(A, p, held), 6)})
    best = max(table, key=lambda r: r["heldout_r2"])
    return best["ridge"], table
