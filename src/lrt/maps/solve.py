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
