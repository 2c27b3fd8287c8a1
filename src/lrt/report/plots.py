"""Plots of a steering evaluation, as inline PNG ``<img>`` tags (matplotlib's ``Figure`` API: no pyplot, no
global backend switch)."""

from __future__ import annotations

import base64
import io

from matplotlib.figure import Figure

from ..evaluate.stats import slope_key

COLORS = {"native": "#1f77b4", "transferred_direction": "#d62728", "transferred_point": "#ff7f0e"}


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def plot_curves(s: dict) -> str:
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
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
    key = slope_key(s)
    names = list(s["curves"])
    vals = [s["curves"][n][key] for n in names]
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    ax.bar(range(len(names)), vals, color=[COLORS.get(n, "#999999") for n in names])
    ax.set_xticks(range(len(names)), [n.replace("transferred_", "tr. ") for n in names], rotation=45, ha="right",
                  fontsize=8)
    ax.set_ylabel("steering slope")
    ax.axhline(0, color="black", lw=0.5)
    return _png(fig)
