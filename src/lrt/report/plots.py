"""Plots of a steering evaluation, as inline PNG ``<img>`` tags (matplotlib's ``Figure`` API: no pyplot, no
global backend switch). ``curves_figure`` / ``slopes_figure`` return the ``Figure``; ``plot_*`` its ``<img>``.

Random vectors are one distribution, never single curves: a grey band (min–max over every ``random_k``) with
their mean dashed, under one legend entry; on the slope chart, their slopes as grey points in one column."""

from __future__ import annotations

import base64
import io
import math

from matplotlib.figure import Figure

from ..evaluate.stats import slope_key

COLORS = {"native": "#1f77b4", "transferred_direction": "#d62728", "transferred_point": "#ff7f0e"}
PALETTE = ("#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#17becf", "#bcbd22", "#393b79", "#ad494a")
RANDOM_COLOR = "#999999"
SHADE_GID = "monotonic-range"


def is_random(name: str) -> bool:
    return name.startswith("random_") and name[len("random_"):].isdigit()


def named(curves: dict) -> list[str]:
    """The vectors that are not random baselines, in their order."""
    return [n for n in curves if not is_random(n)]


def random_names(d: dict) -> list[str]:
    return [n for n in d if is_random(n)]


def colors(names: list[str]) -> dict[str, str]:
    """A fixed colour for the known names, the palette in order for the others (never the random grey)."""
    free = iter(PALETTE * (1 + len(names) // len(PALETTE)))
    return {n: COLORS[n] if n in COLORS else next(free) for n in names}


def shaded_range(s: dict) -> tuple[float, float] | None:
    """The native monotonic α range when it is narrower than the grid (shading the whole plot says nothing)."""
    mr = s.get("monotonic_range")
    if not mr or not s.get("alphas"):
        return None
    lo, hi = float(mr[0]), float(mr[1])
    return None if (lo <= min(s["alphas"]) and hi >= max(s["alphas"])) else (lo, hi)


def _finite(v) -> bool:
    return isinstance(v, (int, float)) and math.isfinite(v)


def _png(fig: Figure) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    return f'<img src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}"/>'


def curves_figure(s: dict) -> Figure:
    fig = Figure(figsize=(7, 4.2))
    ax = fig.subplots()
    a = s["alphas"]
    shade = shaded_range(s)
    if shade:
        ax.axvspan(*shade, color="#fdf1d3", zorder=0, label="native monotonic range", gid=SHADE_GID)
    rnd = [s["curves"][n]["mean"] for n in random_names(s["curves"])]
    if rnd:
        cols = list(zip(*rnd))                                   # per α, every random vector's mean propensity
        lo = [min((v for v in c if _finite(v)), default=math.nan) for c in cols]
        hi = [max((v for v in c if _finite(v)), default=math.nan) for c in cols]
        mean = [_mean([v for v in c if _finite(v)]) for c in cols]
        ax.fill_between(a, lo, hi, color=RANDOM_COLOR, alpha=0.3, lw=0,
                        label=f"random ×{len(rnd)} (same norm): min–max, mean dashed")
        ax.plot(a, mean, color=RANDOM_COLOR, lw=1, ls="--")
    col = colors(named(s["curves"]))
    for name in named(s["curves"]):
        c = s["curves"][name]
        ax.plot(a, c["mean"], marker="o", color=col[name], label=name.replace("_", " "))
        if "ci_low" in c and "ci_high" in c:
            ax.fill_between(a, c["ci_low"], c["ci_high"], color=col[name], alpha=0.15)
    ax.set_xlabel("α (fraction of the layer's median token norm)")
    ax.set_ylabel("mean propensity  log p(+) − log p(−)")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    return fig


def slopes_figure(s: dict) -> Figure:
    key = slope_key(s)
    names = named(s["curves"])
    col = colors(names)
    fig = Figure(figsize=(7, 3))
    ax = fig.subplots()
    vals = [s["curves"][n].get(key) for n in names]
    ax.bar(range(len(names)), [v if _finite(v) else 0.0 for v in vals], color=[col[n] for n in names])
    labels = [n.replace("transferred_", "tr. ") for n in names]
    rs = [s["curves"][n].get(key) for n in random_names(s["curves"])]
    rs = [v for v in rs if _finite(v)]
    if rs:
        x = len(names)
        ax.scatter([x] * len(rs), rs, color=RANDOM_COLOR, s=14, zorder=3)
        m = max(abs(v) for v in rs)
        ax.axhspan(-m, m, color=RANDOM_COLOR, alpha=0.12, lw=0, label=f"± largest random |slope| ({m:.3g})")
        labels.append(f"random ×{len(rs)}")
        ax.legend(fontsize=8)
    ax.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
    ax.set_ylabel("steering slope")
    ax.axhline(0, color="black", lw=0.5)
    return fig


def _mean(v: list[float]) -> float:
    return sum(v) / len(v) if v else math.nan


def plot_curves(s: dict) -> str:
    return _png(curves_figure(s))


def plot_slopes(s: dict) -> str:
    return _png(slopes_figure(s))
