"""Plain-text summary tables printed at the end of each command."""

from __future__ import annotations

from pathlib import Path


def fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return "—" if v is None else str(v)


def percent(fraction):
    """A fraction as a percentage (for a column whose label says "(%)"); None stays None."""
    return None if fraction is None else round(100 * fraction, 2)


def render(rows: list[list], headers: list[str] | None = None, title: str | None = None) -> str:
    cells = ([headers] if headers else []) + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    line = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    for i, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0 and headers:
            out.append(line)
    return "\n".join(out)


def show(rows: list[list], headers: list[str] | None = None, title: str | None = None) -> None:
    print(render(rows, headers, title))


def aligned_share(alignment: dict | None) -> float | None:
    """The share of the source's tokens whose positions were paired (an aligned harvest's tally), or None."""
    if not alignment:
        return None
    by = [v for d in alignment.get("by_source", {}).values() for v in d.values()]
    total = sum(v["source_tokens"] for v in by)
    return sum(v["aligned"] for v in by) / total if total else None


def pairing_text(paired_by: str | None, alignment: dict | None) -> str:
    """How the harvest paired positions, in words."""
    if paired_by != "chars":
        return "token by token (one tokenizer)"
    share = aligned_share(alignment)
    return "tokens ending at the same character (two tokenizers)" + (
        f": {share:.1%} of source tokens" if share is not None else "")


def short_name(name: str) -> str:
    """A model as a summary table shows it: a file or folder path by its last part (the full path is in the
    artifacts), so one long path does not widen the whole table."""
    return Path(name).name if ("/" in name or "\\" in name) else name


def map_summary_rows(source: str, source_layer, target: str, target_layer, meta: dict) -> list[list]:
    """The summary of a fitted map (``meta``: the map's metadata, or the ``map`` section of a results file)."""
    h = meta["metrics"]["heldout"]
    rows = [["map", f"{short_name(source)} L{source_layer} → {short_name(target)} L{target_layer}"],
            ["method", meta["method"]],
            ["ridge" + (" (chosen on held-out rows)" if meta.get("ridge_selection") else ""), meta.get("ridge")],
            ["train / held-out rows", f"{meta['tokens']['train_rows']:,} / {meta['tokens']['heldout_rows']:,}"],
            ["excluded (massive norm)", meta["tokens"]["excluded_massive"]],
            ["held-out R² (all tokens)", h.get("r2")],
            ["held-out R² (< q99 norm)", h.get("r2_below_q99")],
            ["held-out MSE", h.get("mse")],
            ["held-out cosine", h.get("cosine_mean")],
            ["median norm source / target", f"{meta['norms']['source']['median']:.4g} / "
                                            f"{meta['norms']['target']['median']:.4g}"],
            ["seconds (harvest / fit)", f"{meta['seconds']['harvest']:.1f} / {meta['seconds']['fit']:.2f}"]]
    paired_by = (meta.get("tokenizers") or {}).get("paired_by")
    if paired_by:
        rows.insert(4, ["positions paired", pairing_text(paired_by, meta.get("alignment"))])
    ctrl = meta["metrics"].get("shuffled_control_heldout")
    if ctrl:
        rows.insert(6, ["held-out R², shuffled control", ctrl.get("r2")])
    sources = meta.get("document_tokens_by_source") or {}
    for split in ("train", "heldout"):
        if sources.get(split):
            total = sum(sources[split].values())
            rows.append([f"{split} text by source", ", ".join(f"{k} {v / total:.0%}" for k, v in
                                                             sorted(sources[split].items(), key=lambda kv: -kv[1]))])
    return rows


def show_warnings(meta: dict) -> None:
    """A map's warnings, one line each, under its summary table (a row would widen the whole table)."""
    for w in meta.get("warnings") or []:
        print(f"WARNING: {w}")


def show_steering_summary(s: dict) -> None:
    """The steering table: each vector's slope, end points and agreement with native; random as a distribution."""
    from ..evaluate.stats import slope_key

    key = slope_key(s)
    comp = s.get("comparison", {})
    rows = []
    for name, c in s["curves"].items():
        if name.startswith("random_"):
            continue
        cm = comp.get(name, {})
        rows.append([name, c[key], c["mean"][0], c["mean"][-1], cm.get("mean_r"), cm.get("mean_r_shift"),
                     cm.get("mean_r_odd")])
    rm = comp.get("random_mean", {})
    rows.append([f"random (×{len(s['random']['slopes'])}: max / max |·| / mean |·|)",
                 f"{s['random']['max_slope']:.3g} / {s['random']['max_abs_slope']:.3g} / "
                 f"{s['random']['mean_abs_slope']:.3g}" if s["random"]["slopes"]
                 else None, None, None, rm.get("mean_r"), rm.get("mean_r_shift"), rm.get("mean_r_odd")])
    show(rows, ["vector", "slope", f"prop@α={s['alphas'][0]}", f"prop@α={s['alphas'][-1]}", "mean r",
                "mean r shifts", "mean r odd"], title=f"\nsteering on {s['n_items']} items, α grid {s['alphas']}"
                                        + (f", native monotonic in {s['monotonic_range']}" if "monotonic_range" in s
                                           else ""))
    if "capability" in s:
        c = s["capability"]
        show([["unsteered", c["unsteered"]]] + [[n, a] for n, a in c["steered"].items() if not n.startswith("random_")],
             ["vector", f"A/B accuracy at α={c['alpha']}"], title=f"\ncapability ({c['n_items']} items)")
