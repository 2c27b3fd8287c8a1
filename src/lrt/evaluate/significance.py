"""How sure a steering verdict is: a vector's slope against the distribution of random directions' slopes, and
bootstrap intervals over items.

- **Against random directions.** A random unit direction ``u`` and ``−u`` are equally likely, so under the null
  ("this vector moves the model like a random direction of the same norm") slopes are symmetric around 0. Over a
  symmetric α grid the slope is the odd (linear) part of the effect, ``g·u`` for the gradient ``g`` of the mean
  propensity, which for a uniformly random ``u`` in ``d ≫ 1`` dimensions is ~ N(0, σ²). With σ̂² = mean of the
  ``n`` random slopes squared, ``|s| / σ̂`` follows Student's t with ``n`` degrees of freedom: the **p-value**
  (two-sided). Also reported: the **empirical** p, (1 + #random |slopes| ≥ |s|) / (n + 1), which assumes nothing
  but cannot go below 1 / (n + 1), and the **percentile** of |s| among the random |slopes|.
- **Over items.** Items are resampled with replacement (the same resample for every vector: paired); each
  resample gives every vector's slope of its mean curve, hence percentile **CIs** of a slope and of the
  transferred / native **ratio**.

:func:`vector_status` turns these into the words a reader needs: "steers forward" / "steers backward" (p < 0.05
and the slope's CI entirely beyond the largest random |slope|), "within random" (the CI entirely inside it),
"inconclusive" otherwise.
"""

from __future__ import annotations

import math

import torch

from ..stats.balance import Balance

ALPHA_LEVEL = 0.05


def _betacf(a: float, b: float, x: float) -> float:
    """Continued fraction of the regularized incomplete beta function (modified Lentz)."""
    tiny, qab, qap, qam = 1e-300, a + b, a + 1.0, a - 1.0
    c, d = 1.0, 1.0 - qab * x / qap
    d = 1.0 / (d if abs(d) > tiny else tiny)
    h = d
    for m in range(1, 300):
        m2 = 2 * m
        aa = m * (b - m) * x / ((qam + m2) * (a + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        h *= d * c
        aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2))
        d = 1.0 + aa * d
        d = 1.0 / (d if abs(d) > tiny else tiny)
        c = 1.0 + aa / c
        c = c if abs(c) > tiny else tiny
        delta = d * c
        h *= delta
        if abs(delta - 1.0) < 1e-14:
            break
    return h


def betainc(a: float, b: float, x: float) -> float:
    """The regularized incomplete beta function I_x(a, b)."""
    if x <= 0:
        return 0.0
    if x >= 1:
        return 1.0
    lbeta = math.lgamma(a + b) - math.lgamma(a) - math.lgamma(b) + a * math.log(x) + b * math.log1p(-x)
    if x < (a + 1) / (a + b + 2):
        return math.exp(lbeta) * _betacf(a, b, x) / a
    return 1.0 - math.exp(lbeta) * _betacf(b, a, 1.0 - x) / b


def t_two_sided(t: float, df: int) -> float:
    """P(|T| ≥ |t|) for Student's t with ``df`` degrees of freedom."""
    if not math.isfinite(t):
        return 0.0 if t == t else float("nan")
    return betainc(df / 2.0, 0.5, df / (df + t * t))


def against_random(s: float, randoms: list[float]) -> dict:
    """``s`` against random slopes: t-based and empirical p, percentile of |s|, σ̂ of the null, z = s / σ̂."""
    r = [x for x in randoms if math.isfinite(x)]
    n = len(r)
    if n == 0 or not math.isfinite(s):
        return {"p_value": None, "p_empirical": None, "percentile": None, "z": None, "sigma_random": None, "n": n}
    sigma = math.sqrt(sum(x * x for x in r) / n)
    z = s / sigma if sigma > 0 else math.copysign(math.inf, s) if s else 0.0
    ge = sum(1 for x in r if abs(x) >= abs(s))
    return {"p_value": t_two_sided(z, n), "p_empirical": (1 + ge) / (n + 1),
            "percentile": 100.0 * sum(1 for x in r if abs(x) < abs(s)) / n, "z": z, "sigma_random": sigma, "n": n}


def slopes_of(prop: torch.Tensor, alphas: list[float], sl: slice, balance: Balance | None = None) -> torch.Tensor:
    """Least-squares slopes of mean curves: ``prop [V, A, N]`` → ``[V]`` over the α indices ``sl``."""
    x = torch.tensor(alphas[sl], dtype=torch.float64)
    x = x - x.mean()
    y = (balance or Balance()).mean(prop[:, sl].double())
    return (y - y.mean(-1, keepdim=True)) @ x / (x @ x)


def bootstrap_slopes(prop: torch.Tensor, alphas: list[float], sl: slice, n_boot: int, seed: int,
                     balance: Balance | None = None) -> torch.Tensor:
    """``[n_boot, V]``: every vector's slope on the same item resamples (paired across vectors)."""
    balance = balance or Balance()
    N = prop.shape[-1]
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, N, (n_boot, N), generator=g)
    x = torch.tensor(alphas[sl], dtype=torch.float64)
    x = x - x.mean()
    out = torch.empty(n_boot, prop.shape[0], dtype=torch.float64)
    p = prop[:, sl].double()                              # [V, A', N]
    for s in range(0, n_boot, 256):                        # bounded memory
        y = balance.resampled(p, idx[s:s + 256])           # [V, A', b]
        y = y - y.mean(1, keepdim=True)
        out[s:s + 256] = torch.einsum("vab,a->bv", y, x) / (x @ x)
    return out


def interval(samples: torch.Tensor) -> list[float]:
    """95% percentile interval of 1-d ``samples`` (non-finite values dropped)."""
    s = samples[torch.isfinite(samples)]
    if len(s) == 0:
        return [float("nan"), float("nan")]
    q = torch.quantile(s, torch.tensor([0.025, 0.975], dtype=s.dtype))
    return [float(q[0]), float(q[1])]


def vector_status(slope: float, ci: list[float], p: float | None, random_max: float | None) -> str:
    """"steers forward" / "steers backward" / "inconclusive" / "within random" (see the module docstring)."""
    if p is None or random_max is None or not math.isfinite(slope):
        return "no random baseline"
    sign = 1.0 if slope >= 0 else -1.0
    near, far = sorted((sign * ci[0], sign * ci[1]))       # the CI in the vector's own direction
    if p < ALPHA_LEVEL and near > random_max:
        return "steers forward" if sign > 0 else "steers backward"
    if far < random_max:
        return "within random"
    return "inconclusive"
