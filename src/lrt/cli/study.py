"""``lrt study``: behaviours → layer search → a map that never saw each behaviour → vectors on both models →
prediction → the honest verdict; one results file and one HTML page, resumable behaviour by behaviour."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pipelines.config import StudyConfig
from .common import Output, OutputRun, quiet_progress, show, writes_output
from .options import command


@dataclass
class StudyRun(OutputRun):
    """Does the small model's vector, carried through the map, steer the large model like its own?"""

    out: str
    """Output directory (results.json, report.html, config.json, behaviours/, cache/)."""
    study: StudyConfig = field(default_factory=StudyConfig)
    """The pair, the behaviours and the protocol."""
    resume: bool = False
    """Continue a study in OUT: finished behaviours are read back, cached maps and pool differences reused."""


def summary_rows(results: dict) -> list[list]:
    from ..report.study import half_cell

    rows = []
    for name, r in results["behaviours"].items():
        v = r["verdict"]["vectors"]
        n, t = v["native"], v["transferred_direction"]
        tr = r["verdict"]["transfer"]["transferred_direction"]
        layers = f"L{r['layers']['source']}→L{r['layers']['target']}" + (
            "" if r["layer_steers_on_validation"] else " (none on val.)")     # as the report and study_markdown
        rows.append([name, layers, f"±{r['alpha']:g}",
                     f"{n['slope']:.3g} (p {n['p_value']:.2g})", f"{t['slope']:.3g} (p {t['p_value']:.2g})",
                     f"{tr['ratio']:.2f} [{tr['ratio_ci'][0]:.2f}, {tr['ratio_ci'][1]:.2f}]",
                     r["verdict"]["max_abs_random_slope"], half_cell(r),
                     r["signals"]["predicted_z"], t["z"], r["status"]])
    return rows


@writes_output
def run(cfg: StudyRun, out: Output) -> int:
    from ..pipelines.study import run_study
    from ..report.study import GROUP_HEADER, group_rows, write_study_report

    quiet_progress(cfg.study.eval.progress)
    # --overwrite: an empty directory, swapped in at the end; lines flushed (a log file shows them as they come)
    results = run_study(cfg.study, out.target, cfg.resume, log=lambda m: print(m, flush=True))
    write_study_report(out.target)
    s = results["summary"]
    show(summary_rows(results), ["behaviour", "layers", "α", "native slope", "transferred slope",
                                 "ratio [95% CI]", "max |random|", "split-half cos of v / native (pairs)",
                                 "predicted z", "measured z", "verdict"],
         title=f"\n{results['models']['source']['name']} → {results['models']['target']['name']}")
    groups = group_rows(results)
    if groups:
        show(groups, GROUP_HEADER, title="\nby test-item source (each source's items alone)")
    sp = {k: v["spearman"] for k, v in s["prediction_spearman"].items()}
    print(f"\nnative steers on {s['native_steers']} of {s['behaviours']} (forward on {s['native_forward']}); the "
          f"transferred vector reproduces it on {s['transferred_reproduces']} of {s['native_steers']}; median ratio "
          f"{s['median_ratio'] if s['median_ratio'] is None else round(s['median_ratio'], 2)}"
          f"\nprediction (Spearman with the measured z): " + ", ".join(
              f"{k} {'—' if v is None else round(v, 2)}" for k, v in sp.items()))
    print(f"\nreport: {out}/report.html\nresults: {out}/results.json")
    return 0


def register(sub) -> None:
    command(sub, "study", "the transfer study on a pair and a list of behaviours: layer search, held-out map, "
            "prediction, verdict", run, StudyRun)
