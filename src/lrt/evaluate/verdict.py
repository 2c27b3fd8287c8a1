"""The verdict a reader wants first, from a steering evaluation: which vectors beat every random vector."""

from __future__ import annotations

from .stats import slope_key

MODES = ("transferred_direction", "transferred_point")


def verdict(steering: dict) -> dict:
    """Plain statements: each vector's slope, whether it beats every random vector in |slope| (v and −v are
    equally likely random draws, so a vector must beat both), by what margin, and which transfer mode agrees
    better with the native vector (mean r of odd shifts)."""
    key = slope_key(steering)
    names = [n for n in steering["curves"] if not n.startswith("random_")]
    slopes = {n: steering["curves"][n][key] for n in names}
    rmax = steering["random"]["max_abs_slope"]
    beats = {n: rmax is not None and slopes[n] > rmax for n in names}
    out = {"slope": slopes, "max_abs_random_slope": rmax, "beats_all_random": beats,
           "margin_over_random": {n: (slopes[n] - rmax) if rmax is not None else None for n in names}}
    if "native" in beats:
        out["native_beats_all_random"] = beats["native"]
    if "transferred_direction" in beats:
        out["transferred_beats_all_random"] = beats["transferred_direction"]
    comp = steering.get("comparison", {})
    odd = {m: comp[m].get("mean_r_odd", float("nan")) for m in MODES if m in comp}
    if odd:
        out["mean_r_odd"] = odd
        out["mean_r_odd_random"] = comp.get("random_mean", {}).get("mean_r_odd")
    if len(odd) == len(MODES):
        best = max(odd, key=lambda m: (odd[m] == odd[m], odd[m]))
        out["better_transfer_mode"] = best.replace("transferred_", "")
    return out
