"""The tables of the HTML report, one function per section; every cell through :func:`fmt` (a missing or
non-finite value is "—", never ``None`` / ``nan``), random vectors always as a distribution over every
``random_k`` (mean ± standard deviation, min … max), never as one of them."""

from __future__ import annotations

import html
import math

from ..evaluate.stats import slope_key
from .plots import is_random, named, random_names
from .tables import map_summary_rows

STYLE = ("body{font-family:sans-serif;max-width:960px;margin:2em auto;color:#222}table{border-collapse:collapse;"
         "margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
         "td:first-child,th:first-child{text-align:left}img{max-width:100%}p.caption{font-size:13px;color:#555}")
"""The page style every lrt report shares."""

DASH = "—"
REFERENCE = "reference"


def fmt(v, digits: int = 4) -> str:
    """Text of one cell: numbers to ``digits`` significant digits, lists joined, None / NaN / empty as "—"."""
    if v is None:
        return DASH
    if isinstance(v, bool):
        return "yes" if v else "no"
    if isinstance(v, int):
        return str(v)
    if isinstance(v, float):
        if not math.isfinite(v):
            return DASH
        return f"{v:.{digits}g}"
    if isinstance(v, (list, tuple)):
        return ", ".join(fmt(x, digits) for x in v) if v else DASH
    if isinstance(v, dict):
        return "; ".join(f"{k}: {fmt(x, digits)}" for k, x in v.items()) if v else DASH
    s = str(v)
    return DASH if s.strip() in ("", "None", "null", "nan", "NaN") else s


def table(rows: list[list], headers: list[str], cls: str = "") -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(fmt(v))}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table{f' class={cls!r}' if cls else ''}><tr>{head}</tr>{body}</table>"


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v)


def dist(values) -> dict | None:
    """Mean, sample standard deviation, min, max, mean |·| and max |·| of the finite values (None if none)."""
    v = [float(x) for x in values if _finite(x)]
    if not v:
        return None
    n, mean = len(v), sum(v) / len(v)
    sd = math.sqrt(sum((x - mean) ** 2 for x in v) / (n - 1)) if n > 1 else 0.0
    return {"n": n, "mean": mean, "sd": sd, "min": min(v), "max": max(v),
            "mean_abs": sum(map(abs, v)) / n, "max_abs": max(map(abs, v))}


def mean_sd(d: dict | None) -> str:
    return DASH if d is None else f"{fmt(d['mean'])} ± {fmt(d['sd'])}"


def span(d: dict | None) -> str:
    return DASH if d is None else f"{fmt(d['min'])} … {fmt(d['max'])}"


def random_rows(n: int, dists: list[dict | None]) -> list[list]:
    """Two rows summarising random vectors in a table: mean ± sd, and min … max (one cell per ``dists``)."""
    return [[f"random ×{n}: mean ± sd"] + [mean_sd(d) for d in dists],
            [f"random ×{n}: min … max"] + [span(d) for d in dists]]


def _compared(comp: dict) -> list[str]:
    return [n for n in comp if n != "random_mean" and not is_random(n)]


def verdict_section(s: dict, v: dict) -> str:
    key = slope_key(s)
    comp = s.get("comparison", {})
    names = list(v.get("slope") or named(s["curves"]))
    slopes = {n: (v.get("slope") or {}).get(n, s["curves"].get(n, {}).get(key)) for n in names}
    sig, tr = v.get("vectors") or {}, v.get("transfer") or {}
    rnames = random_names(s["curves"])
    rslope = dist(s["curves"][n].get(key) for n in rnames)
    rodd = dist(comp[n].get("mean_r_odd") for n in random_names(comp))
    rows = []
    for n in names:
        g, t = sig.get(n, {}), tr.get(n, {})
        rows.append([n, g.get("status"), slopes[n], g.get("slope_ci"), g.get("p_value"), g.get("p_empirical"),
                     g.get("percentile"), t.get("status", REFERENCE if n == "native" else None), t.get("ratio"),
                     t.get("ratio_ci"), comp[n].get("mean_r_odd") if n in comp else None])
    if rnames:
        rows += [[r[0], None, r[1]] + [None] * 7 + [r[2]] for r in random_rows(len(rnames), [rslope, rodd])]
    out = table(rows, ["vector", "status", "slope", "95% CI (items)", "p (vs random)", "p (empirical)",
                       "percentile of |slope| among random", "transfer", "ratio to native", "95% CI of ratio",
                       "mean r of odd shifts with native"], "verdict")
    rmax = v.get("max_abs_random_slope", rslope["max_abs"] if rslope else None)
    extra = [["largest random |slope|", rmax], ["mean random |slope|", rslope["mean_abs"] if rslope else None]]
    split = s.get("split") or {}
    if s.get("alpha_search"):
        extra.append(["α chosen on", f"{split.get('validation_items')} validation items ({split.get('validation_source')})"
                      f" against {s['alpha_search']['random_rows'][1] - s['alpha_search']['random_rows'][0]} random "
                      "vectors not among the verdict's"])
    if "better_transfer_mode" in v:
        extra.append(["better transfer mode (mean r of odd shifts)", v["better_transfer_mode"]])
    extra.append(["slopes fitted over α", range_text(s)])
    note = ("<p>p: the slope against the random directions' slopes (Student's t with as many degrees of freedom as "
            "random vectors: random slopes are symmetric around 0); empirical p: (1 + random |slopes| ≥ |slope|) / "
            "(n + 1). A vector <em>steers</em> when p &lt; 0.05 and its CI lies beyond the largest random |slope|, "
            "is <em>within random</em> when its CI lies inside it, <em>inconclusive</em> otherwise. A transferred "
            "vector <em>reproduces</em> the native effect when native steers by this same rule and it does too, with "
            "the same sign; an inconclusive vector does not steer."
            "</p>")
    return "<h2>Verdict</h2>" + out + note + table(extra, ["question", "answer"], "verdict-extra")


def range_text(s: dict) -> str:
    a = s["alphas"]
    grid = f"{fmt(min(a))} … {fmt(max(a))}" if a else DASH
    mr = s.get("monotonic_range")
    if not mr:
        return f"the whole grid, {grid} (no native curve to take a monotonic range from)"
    if mr[0] <= min(a) and mr[1] >= max(a):
        return f"the whole grid, {grid} (the native curve is monotonic over all of it)"
    return f"{fmt(mr[0])} … {fmt(mr[1])}, the native curve's monotonic range (grid {grid})"


def agreement_section(s: dict) -> str:
    comp = s.get("comparison") or {}
    keys = ("mean_r", "mean_r_shift", "mean_r_odd", "mean_r_m_ld", "mse")
    rows = [[n] + [comp[n].get(k) for k in keys] for n in _compared(comp)]
    rn = random_names(comp)
    if rn:
        rows += random_rows(len(rn), [dist(comp[n].get(k) for n in rn) for k in keys])
    odd = dist(comp[n].get("mean_r_odd") for n in rn)
    note = (f" Here the {len(rn)} random vectors' mean r of odd shifts is {mean_sd(odd)} (min … max {span(odd)})."
            if odd else "")
    return ("<h2>Agreement with the native vector</h2><p>Mean over α of the Pearson r across items (the LRT "
            "paper's metric), always next to random vectors: raw propensities are dominated by the item, so look at "
            "the r of <i>shifts</i> (propensity at α − at 0) and of <i>odd shifts</i> ((p(α) − p(−α))/2, which also "
            f"cancels the dilution every large vector causes).{html.escape(note)}</p>"
            + table(rows, ["vector", "mean r", "mean r of shifts", "mean r of odd shifts", "mean r (m_LD)",
                           "MSE to native"], "agreement"))


PER_ALPHA = (("r_shift", "r of shifts, p(α) − p(0)"), ("r_odd", "r of odd shifts, (p(α) − p(−α))/2"),
             ("r", "r of propensities"))


def per_alpha_section(s: dict) -> str:
    comp = s.get("comparison") or {}
    names, rn = _compared(comp), random_names(comp)
    out = []
    for key, label in PER_ALPHA:
        rows = []
        for i, alpha in enumerate(s["alphas"]):
            vals = [_at(comp[n], i, key) for n in names]
            d = dist(_at(comp[n], i, key) for n in rn)
            if any(_finite(x) for x in vals) or d:
                rows.append([alpha] + vals + ([mean_sd(d), span(d)] if rn else []))
        if rows:
            out.append(f"<h4>{html.escape(label)}</h4>" + table(
                rows, ["α"] + names + ([f"random ×{len(rn)}: mean ± sd", "random: min … max"] if rn else []),
                f"per-alpha {key}"))
    return "<h3>Per α</h3>" + "".join(out) if out else ""


def _at(c: dict, i: int, key: str):
    pa = c.get("per_alpha") or []
    return pa[i].get(key) if i < len(pa) else None


def side_effects_section(s: dict) -> str:
    parts = []
    if "side_effects" in s:
        se = s["side_effects"]
        kl = se.get("kl", {})
        rows = [[n, kl[n]] for n in named(kl)]
        rn = random_names(kl)
        if rn:
            rows += random_rows(len(rn), [dist(kl[n] for n in rn)])
        parts.append(f"<h2>Side effects</h2><p>KL(unsteered ‖ steered) on neutral text at α = "
                     f"{html.escape(fmt(se.get('alpha')))}</p>" + table(rows, ["vector", "KL (nats)"], "kl"))
    if "capability" in s:
        c = s["capability"]
        st = c.get("steered", {})
        rows = [["unsteered", c.get("unsteered")]] + [[n, st[n]] for n in named(st)]
        rn = random_names(st)
        if rn:
            rows += random_rows(len(rn), [dist(st[n] for n in rn)])
        parts.append(f"<h2>Capability</h2><p>A/B accuracy on {html.escape(fmt(c.get('n_items')))} items at α = "
                     f"{html.escape(fmt(c.get('alpha')))}</p>" + table(rows, ["vector", "accuracy"], "capability"))
    overlap = {n: k for n, k in (s.get("data_overlap") or {}).items() if k}
    if overlap:
        parts.append("<h2>Test items shared with a vector's examples</h2>"
                     + table([[n, k] for n, k in overlap.items()], ["vector", "test items"], "overlap"))
    return "".join(parts)


def vectors_section(results: dict) -> str:
    vec = results.get("vectors") or {}
    cos = vec.get("cosine_to_native") or {}
    norms = vec.get("norms") or {}
    made = vec.get("made_for") or {}
    names = named(results["steering"]["curves"])
    names += [n for n in list(cos) + list(norms) if n not in names]
    rows = [[n, 1.0 if n == "native" and n not in cos else cos.get(n), norms.get(n),
             (f"{made[n].get('model')} layer {made[n].get('layer')}" if isinstance(made.get(n), dict) else None)]
            for n in names]
    headers = ["vector", "cosine to native", "norm", "made for"]
    if not made:
        rows, headers = [r[:3] for r in rows], headers[:3]
    if not norms:
        rows, headers = [r[:2] + r[3:] for r in rows], headers[:2] + headers[3:]
    other = [[k.replace("_", " "), val] for k, val in vec.items()
             if k not in ("concept", "cosine_to_native", "norms", "made_for")]
    return ("<h2>Vectors</h2>" + table(rows, headers, "vectors")
            + (table(other, ["quantity", "value"], "vectors-extra") if other else ""))


def map_section(results: dict) -> str:
    m = results.get("map")
    if not m:
        return ""
    src, tgt = results["models"].get("source") or {}, results["models"]["target"]
    try:
        rows = map_summary_rows(src.get("name"), src.get("layer"), tgt.get("name"), tgt.get("layer"), m)
        rows += [["WARNING", w] for w in m.get("warnings") or []]
    except (KeyError, TypeError):
        held = (m.get("metrics") or {}).get("heldout", {})
        rows = [[f"held-out {k}", held.get(k)] for k in ("rows", "r2", "r2_below_q99", "mse", "cosine_mean")]
    return "<h2>Map quality</h2>" + table(rows, ["quantity", "value"], "map")


def settings_section(results: dict) -> str:
    rows = [[k, fmt(val, 6)] for k, val in (results.get("settings") or {}).items()]   # as recorded
    out = "<h2>Settings</h2>" + table(rows, ["setting", "value"], "settings")
    timings = results.get("timings") or {}
    if timings:
        out += "<h2>Timings</h2>" + table([[k, val] for k, val in timings.items()], ["step", "seconds"], "timings")
    return out
