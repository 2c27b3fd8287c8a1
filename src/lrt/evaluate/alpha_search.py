"""Choose the α range from the native vector's own curve instead of a fixed ±0.25.

A fixed grid can sit inside the random floor (every vector moves the output about as much) or past the turnover
(the model breaks and the curve bends back). The search probes a coarse geometric grid on a subset of items with
the native vector and a few random ones, and keeps the largest α at which the native curve is still monotonic on
[−α, α] and its effect, p(α) − p(−α), is clearly larger than every random vector's.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..stats.balance import Balance

PROBE = (0.0625, 0.125, 0.25, 0.5, 1.0, 2.0)


def choose_alpha(probe: list[float], native: list[float], randoms: list[list[float]], margin: float = 2.0
                 ) -> tuple[float, dict]:
    """From mean propensity curves on the symmetric grid ``[-probe[::-1], 0, probe]``: among the α whose native
    curve is monotonic on [−α, α] and whose native effect exceeds ``margin`` × the largest random |effect|, the one
    where the native effect stands out most from the random ones (|effect| / their root mean square; the larger α
    on a tie). Not simply the largest: far out, every direction overwhelms the prompt and the effect on new items
    is the vector's letter preference, not the behaviour.

    Returns ``(alpha, record)``; when no α qualifies, the smallest monotonic one (or the smallest), flagged.
    """
    k = len(probe)
    grid = [-a for a in reversed(probe)] + [0.0] + list(probe)
    assert len(native) == len(grid), "curves must be on the symmetric probe grid"
    trend = 1.0 if native[k + 1] - native[k - 1] >= 0 else -1.0       # the direction at the smallest α
    rows, best, fallback, best_z = [], None, None, -1.0
    for j, a in enumerate(probe):
        lo, hi = k - 1 - j, k + 1 + j                      # indices of −a and +a
        seg = native[lo:hi + 1]
        mono = all(trend * (b - c) >= 0 for c, b in zip(seg, seg[1:]))
        effect = native[hi] - native[lo]
        rand = max((abs(r[hi] - r[lo]) for r in randoms), default=0.0)
        rms = (sum((r[hi] - r[lo]) ** 2 for r in randoms) / len(randoms)) ** 0.5 if randoms else 0.0
        z = abs(effect) / rms if rms > 0 else float("inf")
        ok = mono and abs(effect) > margin * rand
        rows.append({"alpha": a, "monotonic": mono, "native_effect": effect, "max_random_effect": rand, "ok": ok,
                     "z": z, "random_effects": [r[hi] - r[lo] for r in randoms]})
        if ok and z >= best_z:
            best, best_z = a, z
        if mono and fallback is None:
            fallback = a
        if not mono:
            break                                          # past the turnover: larger α only gets worse
    chosen = best if best is not None else (fallback if fallback is not None else probe[0])
    return chosen, {"probe": rows, "chosen": chosen, "clear_of_random": best is not None, "margin": margin,
                    "grid": grid}


def search_alpha(lm, layer: int, items, native_dir: torch.Tensor, random_dirs: torch.Tensor, median_norm: float,
                 grid_fn, batch_size: int, n_items: int = 16, balance: bool = True, progress: bool = False,
                 desc: str = "α search") -> tuple[float, dict]:
    """Run the probe (``grid_fn``: the propensity grid in use) on the first ``n_items`` of ``items`` (validation
    items, never the verdict's) against ``random_dirs`` (not the verdict's random vectors) and choose α.

    The probe runs one ±α level at a time, smallest first, and stops at the first level where the native curve
    turns over: larger α cannot be chosen then (:func:`choose_alpha` stops there too), so they are not computed.
    """
    dirs = torch.cat([native_dir[None], random_dirs])
    sub = items[:n_items]
    bal = Balance(sub, balance)                 # each matching answer counts equally (lrt.evaluate.stats.Balance)
    zero = bal.mean(grid_fn(lm, layer, sub, dirs, [0.0], median_norm, batch_size)[0][:, 0])      # unsteered, once
    lows, highs = [], []
    bar = tqdm(total=len(PROBE), desc=desc, unit="level", disable=not progress, leave=False)
    for j, a in enumerate(PROBE):
        prop, _ = grid_fn(lm, layer, sub, dirs, [-a, a], median_norm, batch_size)     # [V, 2, N]
        lows.insert(0, bal.mean(prop[:, 0]))
        highs.append(bal.mean(prop[:, 1]))
        curves = torch.stack(lows + [zero] + highs, 1).tolist()      # [V, 2j + 3] on the symmetric grid
        alpha, record = choose_alpha(list(PROBE[:j + 1]), curves[0], curves[1:])
        bar.update()
        if not record["probe"][-1]["monotonic"]:
            break
    bar.close()
    record["items"] = len(sub)
    record["probed"] = list(PROBE[:j + 1])
    return alpha, record
