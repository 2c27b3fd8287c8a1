"""The tables of docs/real-pair.md from one or more `lrt study` results: per behaviour the layer, α, native and
transferred slopes with their CIs and p, the random distribution, the ratio, the prediction and the verdict; then
the prediction's Spearman per signal over all the behaviours given.

    python benchmarks/study_markdown.py runs/study-qwen [runs/study-qwen-persona ...]
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))

from lrt.io.results import load_results  # noqa: E402
from lrt.evaluate.verdict import verdict  # noqa: E402
from lrt.pipelines.study_summary import SIGNALS, study_status, summarize  # noqa: E402
from lrt.report.study import GROUP_HEADER, group_rows, test_cell  # noqa: E402


def f(x, d=3):
    return "—" if x is None else f"{x:.{d}g}" if isinstance(x, float) else str(x)


def ci(c):
    return f"[{f(c[0], 2)}, {f(c[1], 2)}]"


def main() -> None:
    records = {}
    for d in sys.argv[1:]:
        if (Path(d) / "results.json").is_file():
            records.update(load_results(d)["behaviours"])
        else:                                  # a study still running (or stopped): its finished behaviours
            for path in sorted(Path(d).glob("behaviours/*/result.json")):
                r = json.loads(path.read_text(encoding="utf-8"))
                records[r["behaviour"]["name"]] = r
    for r in records.values():                 # judged by this lrt's rules (the numbers are kept)
        r["verdict"] = verdict(r["steering"])
        r["status"] = study_status(r["verdict"])
    print("| behaviour | layers | α | test items | native slope [CI] | p | transferred slope [CI] | p | random mean / max abs "
          "| ratio [CI] | r odd | cos(A·v, native) | predicted z | measured z | verdict |")
    print("| --- " * 15 + "|")
    for name, r in records.items():
        v = r["verdict"]
        n, t = v["vectors"]["native"], v["vectors"]["transferred_direction"]
        tr = v["transfer"]["transferred_direction"]
        rs = [abs(x) for x in r["steering"]["random"]["slopes"]]
        print(f"| {name} | L{r['layers']['source']}→L{r['layers']['target']}"
              f"{'' if r['layer_steers_on_validation'] else ' (none on val.)'} | ±{f(r['alpha'])} "
              f"| {test_cell(r)} | {f(n['slope'])} {ci(n['slope_ci'])} | {f(n['p_value'], 2)} | {f(t['slope'])} {ci(t['slope_ci'])} "
              f"| {f(t['p_value'], 2)} | {f(sum(rs) / len(rs))} / {f(max(rs))} | {f(tr['ratio'], 2)} "
              f"{ci(tr['ratio_ci'])} | {f(tr.get('r_odd'), 2)} | {f(r['signals']['cos_to_native'], 2)} "
              f"| {f(r['signals']['predicted_z'], 2)} | {f(t['z'], 2)} | {r['status']} |")
    s = summarize(records)
    print(f"\nnative steers (p < 0.05, CI beyond the random max) on {s['native_steers']} of {s['behaviours']} "
          f"(forward {s['native_forward']}); "
          f"transferred reproduces on {s['transferred_reproduces']} of {s['native_steers']}; median ratio "
          f"{f(s['median_ratio'], 2)}; not steerable: {', '.join(s['not_steerable']) or '—'}\n")
    print("| signal | Spearman with measured z | behaviours |\n| --- | --- | --- |")
    for k in SIGNALS:
        print(f"| {k} | {f(s['prediction_spearman'][k]['spearman'], 2)} | {s['prediction_spearman'][k]['n']} |")
    groups = group_rows({"behaviours": records})
    if groups:
        print("\n| " + " | ".join(GROUP_HEADER) + " |\n" + "| --- " * len(GROUP_HEADER) + "|")
        for row in groups:
            print("| " + " | ".join(f(x) if not isinstance(x, str) else x for x in row) + " |")
    print("\n| behaviour | layer searched: target layer (effect, z, p) |\n| --- | --- |")
    for name, r in records.items():
        print(f"| {name} | " + "; ".join(f"L{x['layer']} ({f(x['effect'], 2)}, z {f(x['z'], 2)}, p {f(x['p_value'], 2)})"
                                         for x in r["layer_search"]) + " |")


if __name__ == "__main__":
    main()
