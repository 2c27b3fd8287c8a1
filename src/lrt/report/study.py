"""The study's page: one row per behaviour (layer, α, native and transferred slopes with CIs and p, the random
distribution, the ratio, the prediction and the verdict), how well the prediction ranked the behaviours, and each
behaviour's propensity curves (random vectors as a band) — from ``results.json`` of kind ``lrt_study``."""

from __future__ import annotations

import html
import math
from pathlib import Path

from matplotlib.figure import Figure

from ..errors import OutputDirError
from ..io.files import atomic_write_text
from .plots import _png, curves_figure
from .sections import fmt, table


def _ci(ci) -> str:
    return f"[{fmt(ci[0], 3)}, {fmt(ci[1], 3)}]" if ci else "—"


def half_cell(r: dict) -> str:
    """"0.58 / 0.41 (120 pairs)": the split-half cosines of the small model's vector at the chosen source layer and
    of the large model's own at the target layer (where the study recorded it), and the vector pairs; where the
    study took more pairs (``--max-pairs``), the trail that decided it, per candidate it was grown at:
    "; grown at L14: 0.18 (60) → 0.60 (120)", "; grown at L14→L17: 0.96/0.37 (60) → 0.97/0.55 (120)"."""
    trail = r.get("vector_pairs") or []
    s = r["signals"]
    at = lambda t: (t.get("layer"), t.get("target_layer"))  # noqa: E731
    runs: list[list[dict]] = []
    for t in trail:                           # consecutive steps at one candidate read as one run
        if runs and at(t) == at(runs[-1][-1]):
            runs[-1].append(t)
        else:
            runs.append([t])

    def where(t: dict) -> str:
        if "layer" not in t:
            return ""
        return f"at L{t['layer']}" + (f"→L{t['target_layer']}" if "target_layer" in t else "") + ": "

    def halves(t: dict) -> str:
        return fmt(t["split_half_cos"], 2) + (f"/{fmt(t['native_split_half_cos'], 2)}"
                                              if "native_split_half_cos" in t else "")

    grown = "; ".join(where(run[0]) + " → ".join(f"{halves(t)} ({t['pairs']})" for t in run) for run in runs)
    head = fmt(s.get("split_half_cos"), 2) + (f" / {fmt(s['native_split_half_cos'], 2)}"
                                              if "native_split_half_cos" in s else "")
    return f"{head} ({r['items']['vector']} pairs)" + (f"; grown {grown}" if len(trail) > 1 else "")


def test_cell(r: dict) -> str:
    """"80 (50 test set + 30 generate set)": the test items and, where they came from more than one place
    (``--test-fill``), each source's count."""
    src = r.get("test_sources") or {}
    n = r["items"]["test"]
    return f"{n} ({' + '.join(f'{c} {k}' for k, c in src.items())})" if len(src) > 1 else str(n)


def behaviour_rows(results: dict) -> list[list]:
    rows = []
    for name, r in results["behaviours"].items():
        v = r["verdict"]
        n, t = v["vectors"]["native"], v["vectors"]["transferred_direction"]
        tr = v["transfer"]["transferred_direction"]
        rs = [abs(x) for x in r["steering"]["random"]["slopes"]]
        rows.append([name, f"L{r['layers']['source']} → L{r['layers']['target']}"
                     + ("" if r["layer_steers_on_validation"] else " (no layer steered on validation"
                        + ("; " + r["fallback"] if r.get("fallback") not in (None, "largest z") else "")
                        + ")"),
                     f"±{fmt(r['alpha'], 3)}", test_cell(r), f"{fmt(n['slope'], 3)} {_ci(n['slope_ci'])}",
                     n["p_value"],
                     n["status"], f"{fmt(t['slope'], 3)} {_ci(t['slope_ci'])}", t["p_value"],
                     f"{fmt(sum(rs) / len(rs), 3)} / {fmt(max(rs), 3)}" if rs else None,
                     f"{fmt(tr['ratio'], 3)} {_ci(tr['ratio_ci'])}", tr.get("r_odd"),
                     half_cell(r), r["signals"].get("cos_to_native"),
                     r["signals"].get("predicted_z"), t["z"], r["status"]])
    return rows


GROUP_HEADER = ["behaviour", "test items from", "items", "native slope [CI]", "native", "transferred slope [CI]",
                "ratio [CI]", "random max |slope|", "transfer"]


def group_rows(results: dict) -> list[list]:
    """Per behaviour whose test items came from more than one place (``--test-fill``): the verdict on each source's
    items alone, against the random slopes on the same items."""
    rows = []
    for name, r in results["behaviours"].items():
        for g, gv in (r["verdict"].get("by_group") or {}).items():
            n, t = gv["vectors"]["native"], gv["vectors"]["transferred_direction"]
            tr = gv["transfer"]["transferred_direction"]
            rows.append([name, g, gv["n_items"], f"{fmt(n['slope'], 3)} {_ci(n['slope_ci'])}", n["status"],
                         f"{fmt(t['slope'], 3)} {_ci(t['slope_ci'])}", f"{fmt(tr['ratio'], 3)} {_ci(tr['ratio_ci'])}",
                         gv["max_abs_random_slope"], tr["status"]])
    return rows


def prediction_points(results: dict) -> list[tuple[str, float, float, dict]]:
    """(behaviour, predicted z, measured z, its results) where both are finite numbers."""
    out = []
    for name, r in results["behaviours"].items():
        x, y = r["signals"].get("predicted_z"), r["verdict"]["vectors"]["transferred_direction"]["z"]
        if x is not None and y is not None and math.isfinite(x) and math.isfinite(y):
            out.append((name, x, y, r))
    return out


def critical_z(n: int, level: float = 0.05) -> float:
    """The |z| whose two-sided t p-value with ``n`` degrees of freedom is ``level`` (bisection)."""
    from ..evaluate.significance import t_two_sided

    lo, hi = 0.0, 100.0
    for _ in range(60):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if t_two_sided(mid, max(n, 1)) > level else (lo, mid)
    return (lo + hi) / 2


def prediction_figure(results: dict) -> Figure:
    fig = Figure(figsize=(5, 4))
    ax = fig.subplots()
    points = prediction_points(results)
    if not points:
        ax.text(0.5, 0.7, "no behaviour has both a predicted\nand a measured z", ha="center", va="center",
                transform=ax.transAxes, color="#555555")
    for name, x, y, r in points:
        steer = r["status"] != "not steerable here"
        ax.scatter([x], [y], color="#d62728" if steer else "#999999", s=24)
        ax.annotate(name.split(":")[-1][:18], (x, y), fontsize=7, xytext=(3, 3), textcoords="offset points")
    n = results["settings"].get("n_random", 16)
    z05 = critical_z(n)
    ax.axhline(z05, color="#999999", ls="--", lw=0.8, label=f"z at p = 0.05 ({n} random vectors)")
    ax.axhline(-z05, color="#999999", ls="--", lw=0.8)
    ax.set_xlabel("predicted z of A·v (expected cos × native validation z)")
    ax.set_ylabel("measured z of A·v on the test items")
    ax.legend(fontsize=7)
    ax.grid(alpha=0.3)
    return fig


def layer_rows(results: dict) -> list[list]:
    """Every layer the search tried, per behaviour: the native effect on validation items and its z / p."""
    return [[name, f"L{r2['source_layer']} → L{r2['layer']}", f"±{fmt(r2['alpha'], 3)}", r2["effect"], r2["z"],
             r2["p_value"], r2["steers_forward"]]
            for name, r in results["behaviours"].items() for r2 in r["layer_search"]]


def curves_grid(results: dict) -> str:
    out = []
    for name, r in results["behaviours"].items():
        fig = curves_figure(r["steering"])
        fig.set_size_inches(5.2, 3.2)
        fig.axes[0].set_title(f"{name} (L{r['layers']['target']}): {r['status']}", fontsize=9)
        out.append(_png(fig))
    return "".join(out)


NO_PREDICTION = ("<p class='caption'>No behaviour has both a predicted and a measured z (the map's outlook or the "
                 "native validation z is missing): nothing to plot.</p>")


def _group_section(results: dict) -> str:
    rows = group_rows(results)
    if not rows:
        return ""
    return ("<h2>By test-item source</h2>" + table(rows, GROUP_HEADER, "by-source")
            + "<p class='caption'>Where the test set was short and --test-fill took the rest from unused pairs of the "
              "generate set, the verdict on each source's items alone (slopes against the random directions' "
              "slopes on the same items). The filled items share the generate set's distribution, which the "
              "vectors were computed from; a behaviour that steers on both sources does not owe its verdict to "
              "them. Fewer items: wider CIs, so a source alone can be inconclusive where the whole set is not.</p>")


STEERED = {"all": "every position", "answer": "the answer position only"}
"""The study's intervention (``--positions``), as its page names it."""


def render_study(results: dict, style: str) -> str:
    s = results["summary"]
    m = results["models"]
    head = (f"<h1>lrt study</h1><p>{html.escape(m['source']['name'])} → {html.escape(m['target']['name'])} · "
            f"{s['behaviours']} behaviours · steered: {STEERED[results['settings'].get('positions', 'all')]}</p>")
    lines = [["native vector steers (test: p < 0.05, CI beyond the random max)",
              f"{s['native_steers']} of {s['behaviours']} (forward on {s['native_forward']})"],
             ["transferred vector reproduces the native effect", f"{s['transferred_reproduces']} of "
              f"{s['native_steers']}: {', '.join(s['reproduced']) or '—'}"],
             ["median transferred / native ratio (where native steers)", s["median_ratio"]],
             ["not steerable here", ", ".join(s["not_steerable"]) or "—"]]
    pred = [[k, v["spearman"], v["n"]] for k, v in s["prediction_spearman"].items()]
    rows = behaviour_rows(results)
    note = ("<p class='caption'>Each behaviour: the layer where the large model's own vector steered on validation "
            "items (the test items unseen), α chosen there; test items: the test set's, then (--test-fill) unused "
            "generate pairs; the map refitted without the behaviour's family. p: "
            "against the random directions' slopes (t); CIs: 95% bootstrap over test items (paired for the ratio). "
            "Random: mean / max |slope|. Split-half cos of v / native: the small model's vector and the large model's "
            "own, their pairs dealt to two halves (near 1: they agree on a direction; below 0.5 it is mostly their "
            "noise; the study doubles the pairs while either is below 0.5, up to --max-pairs). Predicted z: before "
            "the test evaluation, from the map's outlook and the native vector's validation z; measured z: the "
            "transferred slope over the random slopes' σ.</p>")
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>lrt study</title><style>{style}</style>"
            f"</head><body>{head}<h2>Summary</h2>{table(lines, ['question', 'answer'], 'study-summary')}"
            "<h2>Per behaviour</h2>"
            + table(rows, ["behaviour", "layers", "α", "test items", "native slope [CI]", "native p", "native",
                           "transferred slope [CI]", "transferred p", "random mean / max |slope|", "ratio [CI]",
                           "r odd shifts", "split-half cos of v / native (pairs)", "cos(A·v, native)", "predicted z",
                           "measured z", "verdict"],
                   "study") + note
            + _group_section(results)
            + "<h2>Prediction before the test evaluation</h2>"
            + table(pred, ["signal", "Spearman with measured z", "behaviours"], "prediction")
            + _png(prediction_figure(results)) + ("" if prediction_points(results) else NO_PREDICTION)
            + "<h2>Layer search (validation items)</h2>"
            + table(layer_rows(results), ["behaviour", "layers", "α", "native effect p(α) − p(−α)", "z", "p",
                                          "steers forward"], "layer-search")
            + "<h2>Propensity curves</h2>" + curves_grid(results)
            + "</body></html>")


def write_study_report(out: str | Path) -> Path:
    from ..io.results import load_results
    from .sections import STYLE

    path = Path(out) / "report.html"
    page = render_study(load_results(out), STYLE)      # lrt report OUT renders the same page
    try:
        atomic_write_text(path, page)
    except OSError as e:
        raise OutputDirError(f"cannot write the report to {str(path)!r} ({e.strerror or e})", option="out") from None
    return path
