"""How does transfer fall as the size gap grows? One table and one figure over every pair that can be formed here.

Each same-tokenizer pair of the shipped family (both directions: small → large and large → small) runs the demo's
whole job (`lrt demo --source A --target B`: the closed-form map on the family's text at the default layers, the
sentiment CAA vector on the source, transferred, judged on the target against its own vector and 16 random ones
with the honest protocol). A finished `lrt study` (e.g. the Qwen2.5-Coder 0.5B → 1.5B study of docs/real-pair.md)
adds its pair: its text map's held-out R² and the median transferred/native ratio over the behaviours where the
native vector steers. x = the parameter ratio target/source; y = held-out R² (against the shuffled control) and the
transferred/native slope ratio (CI); the verdict per pair in the table.

    python benchmarks/size_gap.py --out runs/size-gap --study runs/study-qwen

writes ``OUT/size_gap.json``, ``OUT/size_gap.png`` and prints the markdown table docs/benchmarks.md quotes.
Maps across tokenizers (`lrt fit-map --align chars`, given with ``--map``) add their held-out R² (triangles); a
study across tokenizers (``--study`` of an `lrt study --align chars` run) adds its steering. ``--probe`` (an `lrt
probe compare` folder) and ``--sae`` (an `lrt sae transfer --evaluate` folder) put a probe's AUROC (the small
model's own, carried up, carried down) and an SAE's FVU (own, zero-shot on the large model) on their pair's row.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

ZOO = ("zoo-xs", "zoo-s", "zoo-m")


def n_params(name: str) -> int:
    from lrt.models.load import load_model

    lm = load_model(name)
    return sum(p.numel() for p in lm.model.parameters())


def demo_row(source: str, target: str, out: Path, extra: list[str]) -> dict:
    from lrt.cli import main

    d = out / f"{source}__{target}"
    if not (d / "results.json").is_file():
        rc = main(["demo", "--source", source, "--target", target, "--out", str(d), "--overwrite", "--no-progress",
                   *extra])
        if rc != 0:
            raise SystemExit(f"lrt demo {source} → {target} failed (exit {rc})")
    from lrt.evaluate.verdict import verdict

    r = json.loads((d / "results.json").read_text())
    m, v = r["map"]["metrics"], verdict(r["steering"])        # today's rule, also for a demo run before it changed
    nat, tr = v["vectors"]["native"], v["vectors"]["transferred_direction"]
    t = v["transfer"]["transferred_direction"]
    return {"source": source, "target": target, "family": "same (zoo)", "kind": "demo (sentiment)",
            "layers": [r["models"]["source"]["layer"], r["models"]["target"]["layer"]],
            "r2": m["heldout"]["r2"], "r2_control": m["shuffled_control_heldout"]["r2"],
            "r2_robust": m["heldout"].get("r2_below_q99"),
            "native_slope": nat["slope"], "native_p": nat["p_value"], "native_status": nat["status"],
            "transferred_slope": tr["slope"], "transferred_p": tr["p_value"],
            "ratio": t["ratio"], "ratio_ci": t["ratio_ci"], "verdict": t["status"],
            "cos_to_native": r["vectors"]["cosine_to_native"]["transferred_direction"],
            "seconds": r["timings"]["total"]}


def study_row(study: Path, params: dict[str, int]) -> dict:
    r = json.loads((study / "results.json").read_text())
    s, recs = r["summary"], r["behaviours"]
    r2 = [b["map"]["heldout_r2"] for b in recs.values() if b["map"].get("heldout_r2") is not None]
    src, tgt = (r["models"][k]["name"] for k in ("source", "target"))
    across = (r.get("settings") or {}).get("align") == "chars"
    return {"source": Path(src).stem, "target": Path(tgt).stem, "family": "different" if across else "same",
            "kind": f"study ({len(recs)} CAA behaviours)", "r2": sum(r2) / len(r2) if r2 else None,
            "r2_control": None, "native_steers": s["native_steers"], "behaviours": s["behaviours"],
            "ratio": s["median_ratio"], "ratio_ci": None,
            "verdict": f"reproduces on {s['transferred_reproduces']} of {s['native_steers']} where native steers",
            "params": [params.get(src), params.get(tgt)]}


def map_row(d: Path, params: dict[str, int]) -> dict:
    """A fitted map alone (e.g. across tokenizers, where no steering table was run): its held-out R²."""
    m = json.loads((d / "map.json").read_text())
    tok = m.get("tokenizers") or {}
    a = m.get("alignment") or {}
    return {"source": Path(m["source"]).stem, "target": Path(m["target"]).stem,
            "family": "different" if tok.get("paired_by") == "chars" else "same",
            "kind": f"map L{m['source_layer']} → L{m['target_layer']}" + (
                f", aligned rows {a.get('aligned_rows')}" if a else ""),
            "r2": m["metrics"]["heldout"]["r2"], "r2_control": m["metrics"].get("shuffled_control_heldout", {}).get("r2"),
            "r2_robust": m["metrics"]["heldout"].get("r2_below_q99"),
            "ratio": None, "ratio_ci": None, "verdict": "map only (no steering run)",
            "params": [params.get(m["source"]), params.get(m["target"])]}


def probe_cells(d: Path) -> tuple[str, str, str, str]:
    """``(source, target, key, text)``: a probe comparison's AUROCs (own / carried up / carried down)."""
    r = json.loads((d / "results.json").read_text())
    by = {x["probe"].split(" (")[0]: x for x in r["rows"]}
    own, up, down = by["small model's own"], by["transferred up"], by.get("transferred down")
    text = f"{own['auroc']:.2f} / {up['auroc']:.2f} / " + (f"{down['auroc']:.2f}" if down else "—")
    native = by.get("native")
    text += f" (native {native['auroc']:.2f})" if native else ""
    return Path(own["model"]).stem, Path(up["model"]).stem, "probe", f"{r['task']}: {text}"


def sae_cells(d: Path) -> tuple[str, str, str, str]:
    """``(source, target, key, text)``: an SAE's FVU on its own model and zero-shot through the maps."""
    m = json.loads((d / "metrics.json").read_text())
    src, tr = m["source"], m["transferred"]
    return (Path(src["model"]).stem, Path(tr["model"]).stem, "sae",
            f"{src['fvu']:.2f} / {tr['fvu']:.2f} (k {tr['l0']:.0f})")


def attach(rows: list[dict], source: str, target: str, key: str, text: str) -> None:
    """Put a probe's or an SAE's cell on the row of its pair (a map-only row if nothing else has that pair)."""
    hit = [r for r in rows if (r["source"], r["target"]) == (source, target)]        # rows hold stems already
    if not hit:
        raise SystemExit(f"no row for {source} → {target}: give that pair's map with --map")
    for r in hit:
        r[key] = text


def param_lookup(names: list[str], table: dict[str, str], known: dict[str, int]) -> dict[str, int]:
    """Parameter counts: the family's from ``known`` (counted once), other models by file-name prefix from
    ``table``."""
    out = {}
    for n in names:
        if n in known:
            out[n] = known[n]
            continue
        for prefix, v in table.items():
            if Path(n).name.lower().startswith(prefix.lower()):
                out[n] = int(float(v))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default="runs/size-gap")
    ap.add_argument("--study", action="append", default=[], help="a finished lrt study folder (repeatable)")
    ap.add_argument("--map", action="append", default=[], help="a fitted map folder (repeatable): R² only")
    ap.add_argument("--probe", action="append", default=[],
                    help="an lrt probe compare folder (repeatable): AUROC of the small model's own probe, carried up "
                         "and down, on the row of its map's pair")
    ap.add_argument("--sae", action="append", default=[],
                    help="an lrt sae transfer --evaluate folder (repeatable): FVU on the small model and zero-shot "
                         "on the large one, on the row of its pair")
    ap.add_argument("--params", default="qwen2.5-coder-0.5b=494e6,qwen2.5-coder-1.5b=1544e6,smollm2-135m=134.5e6",
                    help="FILE_NAME_PREFIX=PARAMS for models outside the family (not loaded here)")
    ap.add_argument("--demo-args", default="", help="extra flags for every lrt demo (e.g. '--tokens 20000')")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    params = {z: n_params(z) for z in ZOO}
    rows = []
    for i, a in enumerate(ZOO):
        for b in ZOO[i + 1:]:
            for s, t in ((a, b), (b, a)):
                row = demo_row(s, t, out, args.demo_args.split())
                row["params"] = [params[s], params[t]]
                rows.append(row)
                print(f"{s} → {t}: R² {row['r2']:.3f} (control {row['r2_control']:.3f}), native {row['native_slope']:.3g}"
                      f" ({row['native_status']}), transferred {row['transferred_slope']:.3g}, ratio {row['ratio']:.2f}"
                      f" — {row['verdict']}", flush=True)
    table = dict(kv.split("=") for kv in args.params.split(",") if kv)
    for st in args.study:
        r = json.loads((Path(st) / "results.json").read_text())
        names = [r["models"][k]["name"] for k in ("source", "target")]
        rows.append(study_row(Path(st), param_lookup(names, table, params)))
    for d in args.map:
        m = json.loads((Path(d) / "map.json").read_text())
        rows.append(map_row(Path(d), param_lookup([m["source"], m["target"]], table, params)))
    for d in args.probe:
        attach(rows, *probe_cells(Path(d)))
    for d in args.sae:
        attach(rows, *sae_cells(Path(d)))
    for r in rows:
        ps = r.get("params") or [None, None]
        r["param_ratio"] = ps[1] / ps[0] if all(ps) else None
    (out / "size_gap.json").write_text(json.dumps({"rows": rows, "seconds": round(time.time() - t0)}, indent=1))
    plot(rows, out / "size_gap.png")
    print()
    print("| source → target | params ratio | family | held-out R² all tokens / < q99 norm (control) | native slope (p) | transferred slope"
          " | ratio [CI] | verdict | probe AUROC own / up / down | SAE FVU own / zero-shot |")
    print("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
    for r in rows:
        ci = r.get("ratio_ci")
        ratio = "—" if r["ratio"] is None else f"{r['ratio']:.2f}" + (f" [{ci[0]:.2f}, {ci[1]:.2f}]" if ci else " (median)")
        r2 = "—" if r["r2"] is None else f"{r['r2']:.3f}" + (
            f" / {r['r2_robust']:.3f}" if r.get("r2_robust") is not None else "") + (
            f" ({r['r2_control']:.3f})" if r["r2_control"] is not None else "")
        nat = (f"{r['native_slope']:.3g} ({r['native_p']:.2g})" if "native_slope" in r
               else f"steers on {r['native_steers']} of {r['behaviours']}" if "native_steers" in r else "—")
        tr = f"{r['transferred_slope']:.3g}" if "transferred_slope" in r else "—"
        pr = "—" if r["param_ratio"] is None else f"{r['param_ratio']:.2f}"
        print(f"| {r['source']} → {r['target']} | {pr} | {r['family']} | {r2} | {nat} | {tr} | {ratio} | {r['verdict']} "
              f"| {r.get('probe', '—')} | {r.get('sae', '—')} |")
    print(f"\n{out / 'size_gap.png'}; {time.time() - t0:.0f} s")


def short(name: str) -> str:
    """A model's label in the figure: its file stem without the quantisation and instruct suffixes."""
    n = Path(name).name.removesuffix(".gguf")
    for cut in ("-instruct-q4_k_m", "-Instruct.Q4_1", ".Q4_1", "-instruct"):
        n = n.replace(cut, "")
    return n


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import matplotlib.ticker  # noqa: F401

    fig, axes = plt.subplots(1, 2, figsize=(11, 4.5))
    studied = {(r["source"], r["target"]) for r in rows if r["kind"].startswith("study")}
    for r in rows:
        if r["kind"].startswith("map") and (r["source"], r["target"]) in studied:
            continue                                   # the study's row has the same map
        x = r["param_ratio"]
        if x is None:
            continue
        mark = "o" if "zoo" in r["family"] else "s" if r["family"].startswith("same") else "^"
        if r["r2"] is None:
            continue
        color = "tab:blue" if x > 1 else "tab:orange"        # small → large, large → small
        y = r["r2"] if r.get("r2_robust") is None else r["r2_robust"]   # a massive token can sink the all-token R²
        axes[0].scatter(x, y, marker=mark, color=color)
        axes[0].annotate(f"{short(r['source'])}→{short(r['target'])}", (x, y), fontsize=7)
        if r["ratio"] is not None and math.isfinite(r["ratio"]):
            ci = r.get("ratio_ci")
            yerr = [[r["ratio"] - ci[0]], [ci[1] - r["ratio"]]] if ci else None
            axes[1].errorbar(x, r["ratio"], yerr=yerr, fmt=mark, color=color, capsize=3)
            axes[1].annotate(f"{short(r['source'])}→{short(r['target'])}", (x, r["ratio"]), fontsize=7)
    for ax, label in zip(axes, ("map held-out R² (tokens < q99 norm)", "transferred / native slope")):
        ax.set_xscale("log")
        ax.xaxis.set_major_locator(matplotlib.ticker.FixedLocator([0.25, 0.5, 1, 2, 4, 8, 16, 32]))
        ax.xaxis.set_major_formatter(matplotlib.ticker.FormatStrFormatter("%g"))
        ax.xaxis.set_minor_formatter(matplotlib.ticker.NullFormatter())
        ax.set_xlabel("parameters target / source")
        ax.set_ylabel(label)
        ax.axvline(1, color="grey", lw=0.5)
    axes[1].axhline(1, color="grey", lw=0.5)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


if __name__ == "__main__":
    main()
