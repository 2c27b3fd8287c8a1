"""The layer sweep's pictures and page: heatmaps of held-out R² and CKA per (source layer, target layer) with
each source layer's best target boxed, the stitched-loss table, the many-to-one table."""

from __future__ import annotations

import html

from matplotlib.figure import Figure
from matplotlib.patches import Rectangle

from .plots import _png
from .sections import fmt, table
from .tables import percent


def _grid(results: dict, key: str) -> list[list[float]]:
    S, T = results["source_layers"], results["target_layers"]
    cell = {(str(r["source_layer"]), str(r["target_layer"])): r.get(key) for r in results["pairs"]}
    return [[cell.get((str(s), str(t))) if cell.get((str(s), str(t))) is not None else float("nan") for s in S]
            for t in T]


def heatmap_figure(results: dict) -> Figure:
    """Held-out R² and linear CKA, target layers as rows, source layers as columns; best target per source boxed."""
    S, T = results["source_layers"], results["target_layers"]
    fig = Figure(figsize=(4 + 1.1 * len(S), 1.2 + 0.45 * len(T)))
    best = results.get("best_target", {})
    for k, (key, title) in enumerate((("heldout_r2", "held-out R²"), ("cka", "linear CKA"))):
        ax = fig.add_subplot(1, 2, k + 1)
        grid = _grid(results, key)
        im = ax.imshow(grid, origin="lower", aspect="auto", cmap="viridis")
        fig.colorbar(im, ax=ax, shrink=0.8)
        ax.set_xticks(range(len(S)), [str(s) for s in S])
        ax.set_yticks(range(len(T)), [str(t) for t in T])
        ax.set_xlabel(f"source layer ({results['models']['source']['name']})")
        ax.set_ylabel(f"target layer ({results['models']['target']['name']})")
        ax.set_title(title)
        if len(S) * len(T) <= 64:
            for i, row in enumerate(grid):
                for j, v in enumerate(row):
                    if v == v:
                        ax.text(j, i, f"{v:.2f}", ha="center", va="center", fontsize=7, color="w")
        for j, s in enumerate(S):
            t = best.get(str(s))
            if t is not None and t in T:
                ax.add_patch(Rectangle((j - 0.5, T.index(t) - 0.5), 1, 1, fill=False, ec="red", lw=2))
    fig.tight_layout()
    return fig


def pairs_rows(results: dict) -> list[list]:
    best = results.get("best_target", {})
    return [[r["source_layer"], r["target_layer"], "best" if best.get(str(r["source_layer"])) == r["target_layer"]
             else "", r.get("heldout_r2"), r.get("heldout_r2_below_q99"), r.get("cosine"), r.get("shuffled_r2"),
             r.get("cka"), r.get("ridge")] for r in results["pairs"]]


PAIR_HEADERS = ["source layer", "target layer", "", "held-out R²", "R² < q99", "cosine", "shuffled R²", "CKA",
                "ridge"]


def stitched_rows(results: dict) -> list[list]:
    rows = []
    for r in results.get("stitched", []):
        ce, rel = r["ce"], r["relative_increase"]
        rows.append([r["source_layer"], r["target_layer"], ce.get("source"), ce.get("target"), ce.get("source→target"),
                     percent(rel.get("source→target")), r["kl"].get("source→target"),
                     *(percent(rel.get(k)) for k in ("target, mean ablation", "target→source", "source→target→source",
                                                     "target→source→target"))])
    return rows


STITCH_HEADERS = ["source layer", "target layer", "CE source (nats)", "CE target (nats)", "CE stitched (nats)",
                  "+ over target (%)", "KL (nats)", "+ mean ablation (%)", "+ reverse (%)", "+ round trip S→T→S (%)",
                  "+ round trip T→S→T (%)"]


def many_rows(results: dict) -> list[list]:
    return [[r["target_layer"], r["sources"], r["source_layers"], r.get("heldout_r2"), r.get("best_single_source"),
             r.get("best_single_r2"), r.get("r2_gain"), r.get("stitched_ce"), r.get("best_single_stitched_ce"),
             r.get("stitched_ce_gain")] for r in results.get("many_to_one", [])]


def many_summary_rows(results: dict) -> list[list]:
    """The many-to-one maps for the printed summary: R² and stitched CE against the best single source layer."""
    return [[r["target_layer"], r["sources"], r.get("heldout_r2"), r.get("r2_gain"), r.get("stitched_ce"),
             r.get("stitched_ce_gain")] for r in results.get("many_to_one", [])]


MANY_SUMMARY_HEADERS = ["target layer", "from source layers", "held-out R²", "R² gain over best single",
                        "stitched CE (nats)", "CE gain over best single (nats)"]


MANY_HEADERS = ["target layer", "from", "source layers", "held-out R²", "best single source", "its R²", "R² gain",
                "stitched CE", "best single stitched CE", "CE gain"]


def render_sweep(results: dict, style: str) -> str:
    m = results["models"]
    head = (f"<h1>Layer sweep: {html.escape(m['source']['name'])} → {html.escape(m['target']['name'])}</h1>"
            f"<p>{len(results['pairs'])} layer pairs from one harvest ({fmt(results['tokens'].get('train_rows'))} "
            f"training rows, {fmt(results['tokens'].get('heldout_rows'))} held-out rows; statistics "
            f"{fmt(results['memory'].get('statistics_gib'))} GiB).</p>")
    parts = [head, "<h2>Held-out R² and CKA</h2>", _png(heatmap_figure(results)),
             "<p class='caption'>Red box: each source layer's best target layer by held-out R². CKA is computed from "
             "the same statistics (no extra pass).</p>"]
    if results.get("stitched"):
        parts += ["<h2>Stitched next-token loss</h2>",
                  "<p class='caption'>The target runs with its layer replaced by the mapped source state; '+' is the "
                  "relative increase of cross-entropy over the recipient's own (reverse and round trips: over the "
                  "source's). Mean ablation: the layer replaced by its mean state, the floor of a map that carries "
                  "nothing. Held-out text only.</p>", table(stitched_rows(results), STITCH_HEADERS)]
    if results.get("many_to_one"):
        parts += ["<h2>Many-to-one maps</h2>", table(many_rows(results), MANY_HEADERS)]
    parts += ["<h2>Every pair</h2>", table(pairs_rows(results), PAIR_HEADERS)]
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>lrt layer sweep</title><style>{style}</style>"
            f"</head><body>{''.join(parts)}</body></html>")
