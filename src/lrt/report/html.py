"""One self-contained HTML page from a ``results.json``: curves, slopes, correlation table, map quality."""

from __future__ import annotations

import html
import json
from pathlib import Path

from ..io.files import atomic_write_text
from ..io.results import load_results
from .plots import plot_curves, plot_slopes


def _table(rows: list[list], headers: list[str]) -> str:
    def cell(v):
        if isinstance(v, float):
            return f"{v:.4g}"
        return html.escape(str(v))
    head = "".join(f"<th>{html.escape(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{cell(v)}</td>" for v in r) + "</tr>" for r in rows)
    return f"<table><tr>{head}</tr>{body}</table>"


def correlation_rows(s: dict) -> list[list]:
    comp = s.get("comparison", {})
    rows = []
    for i, alpha in enumerate(s["alphas"]):
        row = [alpha]
        for name in ("transferred_direction", "transferred_point", "random_0"):
            pa = comp.get(name, {}).get("per_alpha", [])
            row += [pa[i]["r"] if pa else None, pa[i].get("r_shift") if pa else None]
        rows.append(row)
    return rows


def render(results: dict) -> str:
    s = results["steering"]
    v = results.get("verdict", {})
    comp = s.get("comparison", {})
    m = results.get("map") or {}
    held = m.get("metrics", {}).get("heldout", {})
    models = results["models"]
    src = models.get("source")
    route = (f"{html.escape(str(src['name']))} layer {src['layer']} → " if src else "vectors on ")
    parts = [f"<h1>lrt transfer report</h1><p>{route}{html.escape(str(models['target']['name']))} layer "
             f"{models['target']['layer']} · concept <b>{html.escape(str(results['vectors'].get('concept')))}</b>"
             f" · {s['n_items']} test items</p>"]
    if v:
        rows = [[name, slope, v["beats_all_random"][name], v["margin_over_random"][name]]
                for name, slope in v["slope"].items()]
        parts.append("<h2>Verdict</h2>" + _table(rows, ["vector", "slope", "beats every random vector (|slope|)",
                                                          "margin over the largest random |slope|"]))
        extra = [["largest random |slope|", v["max_abs_random_slope"]]]
        if "better_transfer_mode" in v:
            extra.append(["better transfer mode (mean r of odd shifts)", v["better_transfer_mode"]])
        parts.append(_table(extra, ["question", "answer"]))
    parts.append("<h2>Propensity curves</h2>" + plot_curves(s) + plot_slopes(s))
    if comp:
        rows = [[n, c["mean_r"], c["mean_r_shift"], c.get("mean_r_odd"), c["mean_r_m_ld"], c["mse"]]
                for n, c in comp.items() if not n.startswith("random_") or n == "random_0"]
        parts.append("<h2>Agreement with the native vector</h2><p>Mean over α of the Pearson r across items (the LRT "
                     "paper's metric), always next to random vectors: raw propensities are dominated by the item, "
                     "so look at the r of <i>shifts</i> (propensity at α − at 0) and of <i>odd shifts</i> "
                     "((p(α) − p(−α))/2, which also cancels the dilution every large vector causes): random vectors "
                     "sit near 0 on the latter.</p>"
                     + _table(rows, ["vector", "mean r", "mean r of shifts", "mean r of odd shifts", "mean r (m_LD)",
                                     "MSE to native"]))
        parts.append("<h3>Per α</h3>" + _table(correlation_rows(s), [
            "α", "r dir", "r shift dir", "r point", "r shift point", "r random_0", "r shift random_0"]))
    if "side_effects" in s:
        se = s["side_effects"]
        parts.append(f"<h2>Side effects</h2><p>KL(unsteered ‖ steered) on neutral text at α = {se['alpha']}</p>"
                     + _table([[k, val] for k, val in se["kl"].items()], ["vector", "KL (nats)"]))
    if "capability" in s:
        c = s["capability"]
        parts.append(f"<h2>Capability</h2><p>A/B accuracy on {c['n_items']} items, unsteered {c['unsteered']:.3f}; "
                     f"at α = {c['alpha']}:</p>" + _table([[k, val] for k, val in c["steered"].items()],
                                                         ["vector", "accuracy"]))
    if m:
        parts.append("<h2>Map quality (held-out)</h2>" + _table(
            [[k, held.get(k)] for k in ("rows", "r2", "r2_below_q99", "mse", "cosine_mean")]
            + [["shuffled-control R²", m.get("metrics", {}).get("shuffled_control_heldout", {}).get("r2")]]
            + [[f"cosine({name.replace('_', ' ')}, native)", c]
               for name, c in results["vectors"].get("cosine_to_native", {}).items()],
            ["metric", "value"]))
    parts.append("<h2>Settings and timings</h2>" + _table(
        [[k, json.dumps(val)] for k, val in results.get("settings", {}).items()]
        + [[f"seconds: {k}", val] for k, val in results.get("timings", {}).items()], ["setting", "value"]))
    style = ("body{font-family:sans-serif;max-width:900px;margin:2em auto;color:#222}table{border-collapse:collapse;"
             "margin:0.5em 0}td,th{border:1px solid #ccc;padding:3px 8px;font-size:13px;text-align:right}"
             "td:first-child,th:first-child{text-align:left}img{max-width:100%}")
    return f"<!doctype html><html><head><meta charset='utf-8'><title>lrt report</title><style>{style}</style>" \
           f"</head><body>{''.join(parts)}</body></html>"


def write_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render ``results.json`` (or the directory holding it) to ``out`` (default: next to it, ``report.html``)."""
    results = load_results(results_dir)
    p = Path(results_dir)
    out = Path(out) if out else (p if p.is_dir() else p.parent) / "report.html"
    atomic_write_text(out, render(results))
    return out
