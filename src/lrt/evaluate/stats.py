"""The statistics of steering evaluation: Pearson r, least-squares slope, the native curve's monotonic range,
bootstrap confidence intervals — and the one rule for which slope a result reports."""

from __future__ import annotations

import torch

from ..stats.balance import Balance


def slope_key(steering: dict) -> str:
    """The slope a steering result reports: over the native curve's monotonic α range when there is one."""
    return "slope_monotonic" if "monotonic_range" in steering else "slope"


def pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    den = (a.norm() * b.norm()).item()
    return float((a @ b).item() / den) if den > 0 else float("nan")


def slope(alphas: list[float], y: torch.Tensor) -> float:
    x = torch.tensor(alphas, dtype=torch.float64)
    x = x - x.mean()
    return float((x @ (y.double() - y.double().mean())) / (x @ x)) if len(alphas) > 1 else float("nan")


def monotonic_range(alphas: list[float], curve: torch.Tensor) -> tuple[int, int]:
    """Index range [lo, hi] around α = 0 where ``curve`` keeps the direction of its overall trend."""
    zero = min(range(len(alphas)), key=lambda i: abs(alphas[i]))
    sign = 1.0 if float(curve[-1] - curve[0]) >= 0 else -1.0
    lo = zero
    while lo > 0 and sign * float(curve[lo] - curve[lo - 1]) >= 0:
        lo -= 1
    hi = zero
    while hi < len(alphas) - 1 and sign * float(curve[hi + 1] - curve[hi]) >= 0:
        hi += 1
    return lo, hi


def bootstrap_ci(p: torch.Tensor, n_boot: int, seed: int, balance: Balance | None = None) -> tuple[list, list]:
    """95% CI of the mean over items (``balance``: its kind of mean), for each row of ``p [A, N]``."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, p.shape[1], (n_boot, p.shape[1]), generator=g)
    means = (balance or Balance()).resampled(p, idx)  # [A, n_boot]
    q = torch.quantile(means, torch.tensor([0.025, 0.975]), dim=1)
    return q[0].tolist(), q[1].tolist()
