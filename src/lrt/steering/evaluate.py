"""Evaluate steering vectors on a target model: native vs transferred vs random vs none.

Metrics (all in ``results["steering"]``):
- mean propensity curve over the α grid with a bootstrap 95% CI over items;
- per α, Pearson r across items between the native vector's propensities and each other vector's, and
  its mean over α (the LRT paper's Table 1 metric) — always next to the same r for random vectors,
  because item identity dominates raw propensities;
- the r of *shifts* (propensity at α minus at α = 0), which removes the per-item baseline, and the r of
  *odd shifts* ((p(α) − p(−α)) / 2 on a symmetric grid), which also removes effects even in α: a large
  vector of any direction dilutes the item's own state (through the norms) and so shifts every item
  towards a common value, which correlates with the native shifts even for random vectors;
- MSE between curves, steering slope (least squares over the native curve's monotonic α range);
- side effect: KL(unsteered ‖ steered) of next-token distributions on neutral text at the largest α.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field

import torch

from ..errors import ConfigError, DatasetError
from ..models import LoadedModel
from .apply import steering
from .data import Item
from .propensity import propensity_grid


def default_alphas(alpha_max: float = 0.25, steps: int = 7) -> list[float]:
    return [round(float(a), 6) + 0.0 for a in torch.linspace(-alpha_max, alpha_max, steps)]  # + 0.0: no -0.0


@dataclass
class EvalConfig:
    alphas: list[float] = field(default_factory=default_alphas)
    n_random: int = 12
    batch_size: int = 32
    bootstrap: int = 1000
    seed: int = 0
    kl_sequences: int = 8


def _pearson(a: torch.Tensor, b: torch.Tensor) -> float:
    a, b = a.double() - a.double().mean(), b.double() - b.double().mean()
    den = (a.norm() * b.norm()).item()
    return float((a @ b).item() / den) if den > 0 else float("nan")


def _slope(alphas: list[float], y: torch.Tensor) -> float:
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


def bootstrap_ci(p: torch.Tensor, n_boot: int, seed: int) -> tuple[list, list]:
    """95% CI of the mean over items, for each row of ``p [A, N]``."""
    g = torch.Generator().manual_seed(seed)
    idx = torch.randint(0, p.shape[1], (n_boot, p.shape[1]), generator=g)
    means = p[:, idx].mean(-1)                        # [A, n_boot]
    q = torch.quantile(means, torch.tensor([0.025, 0.975]), dim=1)
    return q[0].tolist(), q[1].tolist()


def random_directions(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, d, generator=g)
    return r / r.norm(dim=-1, keepdim=True)


@torch.no_grad()
def kl_side_effect(lm: LoadedModel, layer: int, texts_ids: list[list[int]], directions: torch.Tensor,
                   alpha: float, median_norm: float) -> list[float]:
    """Mean KL(p_unsteered ‖ p_steered) over positions of neutral text, per direction."""
    if not texts_ids:
        return [float("nan")] * len(directions)
    T = min(len(t) for t in texts_ids)
    ids = torch.tensor([t[:T] for t in texts_ids], device=lm.device)
    base = torch.log_softmax(lm.model(input_ids=ids, use_cache=False).logits.float(), -1)
    out = []
    for v in directions:
        with steering(lm, layer, alpha * median_norm * v):
            lp = torch.log_softmax(lm.model(input_ids=ids, use_cache=False).logits.float(), -1)
        out.append(float((base.exp() * (base - lp)).sum(-1).mean()))
    return out


def capability_side_effect(lm: LoadedModel, layer: int, items: list[Item], directions: torch.Tensor,
                           names: list[str], alpha: float, median_norm: float, batch_size: int) -> dict:
    """A/B accuracy (propensity of the correct answer > 0) unsteered and at ``alpha``, per vector."""
    prop, _ = propensity_grid(lm, layer, items, directions, [0.0, alpha], median_norm, batch_size)
    acc = (prop > 0).float().mean(-1)                      # [V, 2]
    return {"alpha": alpha, "n_items": len(items), "unsteered": float(acc[0, 0]),
            "steered": {n: float(acc[k, 1]) for k, n in enumerate(names)}}


def evaluate_vectors(lm: LoadedModel, layer: int | str, items: list[Item], vectors: dict[str, torch.Tensor],
                     median_norm: float, cfg: EvalConfig | None = None, reference: str = "native",
                     neutral_ids: list[list[int]] | None = None, capability_items: list[Item] | None = None) -> dict:
    """Run the α grid for every vector (plus ``cfg.n_random`` random ones) and compute every metric.

    ``capability_items`` (e.g. MMLU in A/B form, for instruct models) adds the A/B accuracy at the largest α.
    """
    cfg = cfg or EvalConfig()
    if len(items) < 2:
        raise DatasetError(f"the test set has {len(items)} item(s); at least 2 are needed for a correlation")
    if not cfg.alphas:
        raise ConfigError("the α grid is empty; give at least one α (e.g. --alphas -0.2,0,0.2)")
    if 0 not in cfg.alphas:
        raise ConfigError("the α grid must contain 0 (the unsteered baseline that shifts are measured from)")
    li = lm.layer_index(layer)
    names = list(vectors)
    units = torch.stack([v.float() / v.float().norm().clamp_min(1e-12) for v in vectors.values()])
    rand = random_directions(cfg.n_random, lm.d_model, cfg.seed) if cfg.n_random else torch.empty(0, lm.d_model)
    rnames = [f"random_{k}" for k in range(cfg.n_random)]
    t0 = time.time()
    prop, mld = propensity_grid(lm, li, items, torch.cat([units, rand]), cfg.alphas, median_norm, cfg.batch_size)
    grid_seconds = time.time() - t0
    allnames = names + rnames
    zero = cfg.alphas.index(0)
    curves = {}
    for k, name in enumerate(allnames):
        lo, hi = bootstrap_ci(prop[k], cfg.bootstrap, cfg.seed + k)
        curves[name] = {"mean": prop[k].mean(1).tolist(), "ci_low": lo, "ci_high": hi,
                        "m_ld_mean": mld[k].mean(1).tolist(), "slope": _slope(cfg.alphas, prop[k].mean(1))}
    result = {"alphas": cfg.alphas, "n_items": len(items), "median_norm": median_norm, "curves": curves,
              "config": asdict(cfg), "seconds": {"grid": round(grid_seconds, 3)}}
    if reference in names:
        ref = names.index(reference)
        lo, hi = monotonic_range(cfg.alphas, prop[ref].mean(1))
        result["monotonic_range"] = [cfg.alphas[lo], cfg.alphas[hi]]
        sl = slice(lo, hi + 1)
        for k, name in enumerate(allnames):
            curves[name]["slope_monotonic"] = _slope(cfg.alphas[sl], prop[k, sl].mean(1))
        result["comparison"] = _compare(prop, mld, ref, allnames, cfg.alphas, zero)
    rs = [curves[n]["slope_monotonic" if reference in names else "slope"] for n in rnames]
    result["random"] = {"slopes": rs, "max_slope": max(rs) if rs else None,   # a random sign is arbitrary:
                        "max_abs_slope": max(map(abs, rs)) if rs else None,  # compare with |slope| too
                        "mean_abs_slope": sum(abs(s) for s in rs) / len(rs) if rs else None}
    a_max = max(cfg.alphas, key=lambda a: (abs(a), a))     # the largest |α|, positive on ties
    if neutral_ids:
        kl = kl_side_effect(lm, li, neutral_ids, torch.cat([units, rand]), a_max, median_norm)
        result["side_effects"] = {"alpha": a_max, "kl": dict(zip(allnames, kl))}
    if capability_items:
        result["capability"] = capability_side_effect(lm, li, capability_items, torch.cat([units, rand]), allnames,
                                                      a_max, median_norm, cfg.batch_size)
    return result


def _compare(prop: torch.Tensor, mld: torch.Tensor, ref: int, names: list[str], alphas: list[float],
             zero: int) -> dict:
    """Per α: r(native, X) of propensities, of m_LD and of shifts; their means; MSE between curves."""
    out = {}
    for k, name in enumerate(names):
        if k == ref:
            continue
        per_alpha = []
        for a, alpha in enumerate(alphas):
            row = {"alpha": alpha, "r": _pearson(prop[ref, a], prop[k, a]), "r_m_ld": _pearson(mld[ref, a], mld[k, a])}
            if a != zero:
                row["r_shift"] = _pearson(prop[ref, a] - prop[ref, zero], prop[k, a] - prop[k, zero])
            if alpha > 0 and -alpha in alphas:      # odd part: cancels effects even in α (norm dilution)
                m = alphas.index(-alpha)
                row["r_odd"] = _pearson(prop[ref, a] - prop[ref, m], prop[k, a] - prop[k, m])
            per_alpha.append(row)
        nz = [r for r in per_alpha if "r_shift" in r]
        odd = [r["r_odd"] for r in per_alpha if "r_odd" in r]
        out[name] = {"per_alpha": per_alpha,
                     "mean_r": sum(r["r"] for r in per_alpha) / len(per_alpha),
                     "mean_r_m_ld": sum(r["r_m_ld"] for r in per_alpha) / len(per_alpha),
                     "mean_r_shift": sum(r["r_shift"] for r in nz) / len(nz) if nz else float("nan"),
                     "mean_r_odd": sum(odd) / len(odd) if odd else float("nan"),
                     "mse": float(((prop[ref] - prop[k]) ** 2).mean())}
    rnd = [n for n in names if n.startswith("random_")]
    if rnd:
        out["random_mean"] = {key: sum(out[n][key] for n in rnd) / len(rnd)
                              for key in ("mean_r", "mean_r_m_ld", "mean_r_shift", "mean_r_odd", "mse")}
    return out
