"""One self-contained HTML page from a ``results.json``: curves, slopes, correlation table, map quality."""

from __future__ import annotations

import base64
import html
import io
import json
from pathlib import Path

from .artifacts import atomic_write_text
from .errors import ArtifactError

COLORS = {"native": "#1f77b4", "transferred_direction": "#d62728", "transferred_point": "#ff7f0e"}


def _png(fig) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def plot_curves(s: dict) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    a = s["alphas"]
    if "monotonic_range" in s:
        ax.axvspan(*s["monotonic_range"], color="#eeeeee", label="native monotonic range")
    for name, c in s["curves"].items():
        if name.startswith("random_"):
            ax.plot(a, c["mean"], color="#999999", lw=0.8, alpha=0.7,
                    label="random (same norm)" if name == "random_0" else None)
            continue
        ax.plot(a, c["mean"], marker="o", color=COLORS.get(name), label=name.replace("_", " "))
        ax.fill_between(a, c["ci_low"], c["ci_high"], color=COLORS.get(name), alpha=0.15)
    ax.set_xlabel("α (fraction of the layer's median token norm)")
    ax.set_ylabel("mean propensity  log p(+) − log p(−)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return _png(fig)


def plot_slopes(s: dict) -> str:
    import matplotlib.pyplot as plt

    key = "slope_monotonic" if "monotonic_range" in s else "slope"
    names = list(s["curves"])
    vals = [s["curves"][n][key] for n in names]
    fig, ax = plt.subplots(figsize=(7, 3))
    ax.bar(range(len(names)), vals, color=[COLORS.get(n, "#999999") for n in names])
    ax.set_xticks(range(len(names)), [n.replace("transferred_", "tr. ") for n in names], rotation=45, ha="right",
                  fontsize=8)
    ax.set_ylabel("steering slope")
    ax.axhline(0, color="black", lw=0.5)
    return _png(fig)


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
    m = results.get("map", {})
    held = m.get("metrics", {}).get("heldout", {})
    parts = [f"<h1>lrt transfer report</h1><p>{html.escape(str(results['models']['source']['name']))} layer "
             f"{results['models']['source']['layer']} → {html.escape(results['models']['target']['name'])} layer "
             f"{results['models']['target']['layer']} · concept <b>{html.escape(str(results['vectors']['concept']))}</b>"
             f" · {s['n_items']} test items</p>"]
    if v:
        parts.append("<h2>Verdict</h2>" + _table([
            ["native vector beats every random vector (|slope|)", v["native_beats_all_random"]],
            ["transferred vector beats every random vector (|slope|)", v["transferred_beats_all_random"]],
            ["better transfer mode (mean r of odd shifts)", v["better_transfer_mode"]],
            ["slopes native / transferred (direction) / (point)",
             " / ".join(f"{v['slope'][k]:.3f}" for k in ("native", "transferred_direction", "transferred_point"))],
            ["largest random |slope|", v["max_abs_random_slope"]]], ["question", "answer"]))
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
    results_dir = Path(results_dir)
    f = results_dir / "results.json" if results_dir.is_dir() else results_dir
    if not f.exists():
        raise ArtifactError(f"{f} does not exist; run `lrt demo` or `lrt evaluate` first")
    try:
        results = json.loads(f.read_text())
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{f} is not valid JSON ({e.msg})") from None
    if results.get("kind") != "lrt_results":
        raise ArtifactError(f"{f} is not an lrt results file")
    out = Path(out) if out else f.parent / "report.html"
    atomic_write_text(out, render(results))
    return out
