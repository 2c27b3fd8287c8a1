"""The verdict a reader wants first, from a steering evaluation, sign-aware and with its uncertainty.

Two questions, answered separately:

1. **Does the native vector steer this model?** Forward (adding the matching-minus-non-matching direction raises
   the matching answer's propensity), backward, or not: one rule, the vector's status from
   :func:`.significance.vector_status` — it steers when its p-value against the random slopes is below 0.05 *and*
   its slope's bootstrap CI over items lies entirely beyond the largest random |slope| (:func:`steers`); a CI that
   straddles that maximum is "inconclusive" and does not count. A behaviour whose native vector does not steer says
   nothing about transfer: it is "not steerable here", neither a success nor a failure.
2. **Does the transferred vector reproduce the native effect?** Same sign as native and steering by the same rule,
   with the transferred / native ratio and its CI and the r of odd shifts across items.
"""

from __future__ import annotations

import math

from .significance import ALPHA_LEVEL
from .stats import slope_key

MODES = ("transferred_direction", "transferred_point")


STEERS = ("steers forward", "steers backward")


def steers(sig: dict) -> bool:
    """The one rule: the vector's status is "steers forward" / "steers backward" (p < 0.05 against the random
    directions and the slope's CI over items beyond the largest random |slope|): an effect no random direction
    made and a different draw of items would not lose. "inconclusive" and "within random" do not steer."""
    return sig.get("status") in STEERS


def _transfer_status(native: dict | None, sig: dict) -> str:
    if native is None or native.get("p_value") is None:
        return "no native reference"
    if not steers(native):
        return "native does not steer here: no transfer judgement"
    if not math.isfinite(sig["slope"]) or sig["slope"] * native["slope"] <= 0:
        return "opposite sign to native"
    if steers(sig):
        return "reproduces the native effect"
    return f"same sign, {sig.get('status', 'no random baseline')}"


def _transfers(sig: dict, names: list[str]) -> dict:
    """Per non-native vector: whether it reproduces the native effect, with the ratio and its CI."""
    out = {}
    for n in names:
        if n == "native" or n not in sig:
            continue
        status = _transfer_status(sig.get("native"), sig[n])
        out[n] = {"status": status, "reproduces": status == "reproduces the native effect",
                  "ratio": sig[n].get("ratio"), "ratio_ci": sig[n].get("ratio_ci")}
    return out


def group_verdict(sig: dict, n_items: int, random_max: float | None) -> dict:
    """The same two questions on one group of the test items alone (``steering["by_group"]``): each vector's
    numbers and status, the native vector's, and the transfers'."""
    native = sig.get("native")
    out = {"n_items": n_items, "max_abs_random_slope": random_max, "vectors": {n: dict(s) for n, s in sig.items()},
           "transfer": _transfers(sig, list(sig))}
    if native is not None:
        out["native"] = {"steers": steers(native), "direction": "forward" if native["slope"] > 0 else "backward",
                         "status": native["status"]}
    return out


def verdict(steering: dict) -> dict:
    """Plain statements: per vector its slope, CI, p against the random distribution and status; per transferred
    vector whether it reproduces the native effect; the legacy 'beats every random vector' flags."""
    key = slope_key(steering)
    names = [n for n in steering["curves"] if not n.startswith("random_")]
    slopes = {n: steering["curves"][n][key] for n in names}
    rmax = steering["random"]["max_abs_slope"]
    beats = {n: rmax is not None and abs(slopes[n]) > rmax for n in names}
    out = {"slope": slopes, "max_abs_random_slope": rmax, "beats_all_random": beats,
           "margin_over_random": {n: (abs(slopes[n]) - rmax) if rmax is not None else None for n in names},
           "n_random": len(steering["random"]["slopes"]), "n_items": steering["n_items"], "level": ALPHA_LEVEL}
    sig = steering.get("significance") or {}
    out["vectors"] = {n: dict(sig[n]) for n in names if n in sig}
    native = sig.get("native")
    if native is not None:
        out["native_beats_all_random"] = beats["native"]
        direction = "forward" if native["slope"] > 0 else "backward"
        out["native"] = {"steers": steers(native), "direction": direction, "status": native["status"]}
    if "transferred_direction" in beats:
        out["transferred_beats_all_random"] = beats["transferred_direction"]
    out["transfer"] = _transfers(sig, names)
    if steering.get("by_group"):
        out["by_group"] = {g: group_verdict(r["significance"], r["n_items"], r["random"]["max_abs_slope"])
                           for g, r in steering["by_group"].items()}
    comp = steering.get("comparison", {})
    odd = {m: comp[m].get("mean_r_odd", float("nan")) for m in comp if m != "random_mean" and
           not m.startswith("random_")}
    if odd:
        out["mean_r_odd"] = odd
        out["mean_r_odd_random"] = comp.get("random_mean", {}).get("mean_r_odd")
        for n, r in odd.items():
            if n in out["transfer"]:
                out["transfer"][n]["r_odd"] = r
    if all(m in odd for m in MODES):
        best = max(MODES, key=lambda m: (odd[m] == odd[m], odd[m]))
        out["better_transfer_mode"] = best.replace("transferred_", "")
    return out


def verdict_lines(steering: dict, v: dict) -> list[str]:
    """The verdict as sentences for a command's summary."""
    lines = []
    search = steering.get("alpha_search")
    split = steering.get("split") or {}
    a = max(abs(x) for x in steering["alphas"])
    head = (f"{v['n_items']} test items, {v['n_random']} random vectors, α up to ±{a:g} × the layer's median norm")
    if search:
        head += (f" (chosen on {split.get('validation_items')} validation items — {split.get('validation_source')} — "
                 f"against {search['random_rows'][1] - search['random_rows'][0]} other random vectors)")
    lines.append(head)
    for n, s in v.get("vectors", {}).items():
        p = "—" if s.get("p_value") is None else f"{s['p_value']:.2g}"
        text = (f"{n}: {s['status']} — slope {s['slope']:.3g} [95% CI {s['slope_ci'][0]:.3g}, {s['slope_ci'][1]:.3g}],"
                f" p {p} (t against the random slopes; empirical {s.get('p_empirical') or float('nan'):.2g}),"
                f" |slope| above {s.get('percentile') or 0:.0f}% of random")
        t = v.get("transfer", {}).get(n)
        if t:
            ci = t.get("ratio_ci") or [float("nan")] * 2
            text += (f"; {t['status']}: ratio to native {t['ratio']:.2f} [{ci[0]:.2f}, {ci[1]:.2f}]"
                     + (f", r of odd shifts {t['r_odd']:.2f}" if t.get("r_odd") is not None else ""))
        lines.append(text)
    for g, gv in (v.get("by_group") or {}).items():
        parts = []
        for n, s in gv["vectors"].items():
            ci = s["slope_ci"]
            parts.append(f"{n} {s['slope']:.3g} [{ci[0]:.3g}, {ci[1]:.3g}] {s['status']}")
        t = gv["transfer"].get("transferred_direction")
        tail = f"; transferred {t['status']}" if t else ""
        rmax = gv["max_abs_random_slope"]
        rmax = "—" if rmax is None else f"{rmax:.3g}"
        lines.append(f"  on the {gv['n_items']} items from the {g} alone (random |slope| max {rmax}): "
                     + ", ".join(parts) + tail)
    return lines
