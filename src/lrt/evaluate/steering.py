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
from dataclasses import asdict, replace

import torch

from ..data.contrasts import Item
from ..errors import DatasetError
from ..models.layers import LayerSpec
from ..models.load import LoadedModel
from .alpha_search import search_alpha
from .config import EvalConfig, default_alphas
from .items import ItemCurves
from .answer import grid_for
from .side_effects import capability_side_effect, kl_side_effect
from .significance import against_random, bootstrap_slopes, interval, slopes_of, vector_status
from .stats import Balance, bootstrap_ci, monotonic_range, pearson, slope, slope_key
from ..stats.balance import balanced_pick_indices


def random_directions(n: int, d: int, seed: int) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    r = torch.randn(n, d, generator=g)
    return r / r.norm(dim=-1, keepdim=True)


def random_sets(cfg: EvalConfig, d: int) -> tuple[torch.Tensor, torch.Tensor]:
    """(the verdict's ``n_random`` directions, the α search's ``search_random`` ones): rows of one seeded draw,
    disjoint by construction."""
    draws = random_directions(cfg.n_random + cfg.search_random, d, cfg.seed)
    return draws[:cfg.n_random], draws[cfg.n_random:]


def split_validation(items: list[Item], n: int, seed: int) -> tuple[list[Item], list[Item], list[int]]:
    """``n`` items (a seeded choice, half per matching letter where there are both) set aside for choosing α, and
    the rest (in their order) for the verdict."""
    if len(items) < n + 2:
        raise DatasetError(f"the test set has {len(items)} items; choosing α on {n} of them leaves fewer than 2 to "
                           "judge on: give a validation set, fewer search items, or more test items",
                           option="search_items")
    g = torch.Generator().manual_seed(seed)
    order = torch.randperm(len(items), generator=g).tolist()
    val = sorted(order[j] for j in balanced_pick_indices([items[i] for i in order], n))   # half per matching letter
    keep = [i for i in range(len(items)) if i not in set(val)]
    return [items[i] for i in val], [items[i] for i in keep], val


def evaluate_vectors(lm: LoadedModel, layer: LayerSpec, items: list[Item], vectors: dict[str, torch.Tensor],
                     median_norm: float, cfg: EvalConfig | None = None, reference: str = "native",
                     neutral_ids: list[list[int]] | None = None, capability_items: list[Item] | None = None,
                     validation: list[Item] | None = None, validation_source: str | None = None,
                     alpha_record: dict | None = None, groups: list[str] | None = None,
                     keep_items: bool = False) -> dict:
    """Run the α grid for every vector (plus ``cfg.n_random`` random ones) and compute every metric.

    With ``cfg.alpha_search`` α is chosen on ``validation`` items (or, when none are given, on ``cfg.search_items``
    items split off ``items`` by a seeded choice and never judged on) against ``cfg.search_random`` random
    directions that are not among the verdict's. ``capability_items`` (e.g. MMLU in A/B form, for instruct models)
    adds the A/B accuracy at the largest α. ``alpha_record``: an α search already run on validation items (the
    study's layer search); ``cfg.alphas`` is then its grid and the slopes are taken over all of it. ``groups``: one
    label per test item (e.g. where it came from); with two or more labels, ``results["by_group"]`` has the
    significance of every vector on each group's items alone, against the random slopes on the same items.
    ``keep_items``: ``results["item_curves"]`` is the :class:`.items.ItemCurves` of the grid (not JSON: the
    caller saves it).
    """
    cfg = cfg or EvalConfig()
    if groups is not None and len(groups) != len(items):
        raise ValueError(f"groups has {len(groups)} labels for {len(items)} test items")
    li = lm.layer_index(layer)
    split = {"test_items": len(items), "validation_items": 0, "validation_source": None}
    if alpha_record is not None:
        cfg = replace(cfg, alpha_search=False)
        split.update(validation_items=alpha_record.get("items"), validation_source=validation_source or "given")
    if cfg.alpha_search and reference in vectors:
        if validation is None:
            validation, items, idx = split_validation(items, cfg.search_items, cfg.seed)
            validation_source = "split off the test set (seeded); those items are not judged on"
            split.update(validation_indices_in_test_file=idx, test_items=len(items))
        split.update(validation_items=len(validation), validation_source=validation_source or "given")
    if len(items) < 2:
        raise DatasetError(f"the test set has {len(items)} item(s); at least 2 are needed for a correlation")
    names = list(vectors)
    units = torch.stack([v.float() / v.float().norm().clamp_min(1e-12) for v in vectors.values()])
    rand, search_rand = random_sets(cfg, lm.d_model)      # disjoint: the search never sees a verdict's
    rnames = [f"random_{k}" for k in range(cfg.n_random)]
    t0 = time.time()
    grid = grid_for(cfg.positions)
    search = alpha_record
    if cfg.alpha_search and reference in names:
        alpha, search = search_alpha(lm, li, validation, units[names.index(reference)], search_rand, median_norm,
                                     grid, cfg.eval_batch_size, cfg.search_items, cfg.balance,
                                     progress=cfg.progress)
        search["random_rows"] = [cfg.n_random, cfg.n_random + cfg.search_random]
        cfg = replace(cfg, alphas=default_alphas(alpha, cfg.alpha_steps), alpha_max=alpha, alpha_search=False)
    prop, mld = grid(lm, li, items, torch.cat([units, rand]), cfg.alphas, median_norm, cfg.eval_batch_size,
                     progress=cfg.progress)
    grid_seconds = time.time() - t0
    allnames = names + rnames
    zero = cfg.alphas.index(0)
    curves = {}
    bal = Balance(items, cfg.balance)
    for k, name in enumerate(allnames):
        lo, hi = bootstrap_ci(prop[k], cfg.bootstrap, cfg.seed + k, bal)
        slo, shi = bootstrap_ci(prop[k] - prop[k, zero], cfg.bootstrap, cfg.seed + k, bal)     # paired by item
        curves[name] = {"mean": bal.mean(prop[k]).tolist(), "ci_low": lo, "ci_high": hi, "shift_ci_low": slo,
                        "shift_ci_high": shi, "m_ld_mean": bal.mean(mld[k]).tolist(),
                        "slope": slope(cfg.alphas, bal.mean(prop[k]))}
    result = {"alpha_search": search, "alphas": cfg.alphas, "n_items": len(items), "median_norm": median_norm,
              "curves": curves, "split": split, "balance": bal.record(), "random_directions": {"seed": cfg.seed, "verdict_rows": [0, cfg.n_random],
                                                                    "search_rows": [cfg.n_random,
                                                                                    cfg.n_random + cfg.search_random]},
              "config": asdict(cfg), "seconds": {"grid": round(grid_seconds, 3)}}
    sl = slice(0, len(cfg.alphas))
    if reference in names:
        ref = names.index(reference)
        if search is None:       # a fixed grid: the slope over the native curve's monotonic range
            lo, hi = monotonic_range(cfg.alphas, bal.mean(prop[ref]))
            result["monotonic_range"] = [cfg.alphas[lo], cfg.alphas[hi]]
            sl = slice(lo, hi + 1)
            for k, name in enumerate(allnames):
                curves[name]["slope_monotonic"] = slope(cfg.alphas[sl], bal.mean(prop[k, sl]))
        result["comparison"] = _compare(prop, mld, ref, allnames, cfg.alphas, zero)
    rs = [curves[n][slope_key(result)] for n in rnames]
    result["random"] = {"slopes": rs, "max_slope": max(rs) if rs else None,   # a random sign is arbitrary:
                        "max_abs_slope": max(map(abs, rs)) if rs else None,  # compare with |slope| too
                        "mean_abs_slope": sum(abs(s) for s in rs) / len(rs) if rs else None}
    result["significance"] = _significance(prop[:len(names)], names, rs, cfg, sl, reference, bal)
    if groups is not None and len(set(groups)) > 1:
        result["by_group"] = _by_group(prop, names, groups, items, cfg, sl, reference)
    if keep_items:
        result["item_curves"] = ItemCurves(prop, mld, allnames, list(cfg.alphas), [it.source for it in items],
                                           bal.cell_names, groups)
    a_max = max(cfg.alphas, key=lambda a: (abs(a), a))     # the largest |α|, positive on ties
    if neutral_ids:
        kl = kl_side_effect(lm, li, neutral_ids, torch.cat([units, rand]), a_max, median_norm)
        result["side_effects"] = {"alpha": a_max, "kl": dict(zip(allnames, kl))}
    if capability_items:
        result["capability"] = capability_side_effect(lm, li, capability_items, torch.cat([units, rand]), allnames,
                                                      a_max, median_norm, cfg.eval_batch_size, cfg.progress,
                                                      cfg.positions)
    return result


def _significance(prop: torch.Tensor, names: list[str], random_slopes: list[float], cfg: EvalConfig, sl: slice,
                  reference: str, bal: Balance) -> dict:
    """Per named vector: its slope against the random slopes (p, percentile), a bootstrap CI over items, its status;
    per non-reference vector the ratio to the reference with a paired bootstrap CI."""
    point = slopes_of(prop, cfg.alphas, sl, bal)
    boot = bootstrap_slopes(prop, cfg.alphas, sl, cfg.bootstrap, cfg.seed + 7919, bal)
    rmax = max(map(abs, random_slopes)) if random_slopes else None
    out = {}
    for k, name in enumerate(names):
        s = float(point[k])
        ci = interval(boot[:, k])
        sig = against_random(s, random_slopes)
        out[name] = {"slope": s, "slope_ci": ci, **sig, "status": vector_status(s, ci, sig["p_value"], rmax)}
        if reference in names and name != reference:
            ref = names.index(reference)
            out[name]["ratio"] = s / float(point[ref]) if float(point[ref]) else float("nan")
            out[name]["ratio_ci"] = interval(boot[:, k] / boot[:, ref])
    return out


def _by_group(prop: torch.Tensor, names: list[str], groups: list[str], items: list[Item], cfg: EvalConfig, sl: slice,
              reference: str) -> dict:
    """Per group label (in first-seen order, at least 2 items): its item count, the random slopes and every named
    vector's significance on those items alone (:func:`_significance`, the balance taken within the group)."""
    out = {}
    for g in dict.fromkeys(groups):
        idx = [i for i, x in enumerate(groups) if x == g]
        if len(idx) < 2:
            continue
        bal = Balance([items[i] for i in idx], cfg.balance)
        p = prop[:, :, idx]
        rs = [float(x) for x in slopes_of(p[len(names):], cfg.alphas, sl, bal)]
        out[g] = {"n_items": len(idx), "random": {"slopes": rs, "max_abs_slope": max(map(abs, rs)) if rs else None},
                  "significance": _significance(p[:len(names)], names, rs, cfg, sl, reference, bal)}
    return out


def _compare(prop: torch.Tensor, mld: torch.Tensor, ref: int, names: list[str], alphas: list[float],
             zero: int) -> dict:
    """Per α: r(native, X) of propensities, of m_LD and of shifts; their means; MSE between curves."""
    out = {}
    for k, name in enumerate(names):
        if k == ref:
            continue
        per_alpha = []
        for a, alpha in enumerate(alphas):
            row = {"alpha": alpha, "r": pearson(prop[ref, a], prop[k, a]), "r_m_ld": pearson(mld[ref, a], mld[k, a])}
            if a != zero:
                row["r_shift"] = pearson(prop[ref, a] - prop[ref, zero], prop[k, a] - prop[k, zero])
            if alpha > 0 and -alpha in alphas:      # odd part: cancels effects even in α (norm dilution)
                m = alphas.index(-alpha)
                row["r_odd"] = pearson(prop[ref, a] - prop[ref, m], prop[k, a] - prop[k, m])
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
