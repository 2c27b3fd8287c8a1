"""``lrt demo``: the whole transfer experiment (on the embedded family by default, no download)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..pipelines.config import ExperimentConfig
from .common import Output, OutputRun, quiet_progress, show, writes_output
from .options import command


@dataclass
class DemoRun(OutputRun):
    """The whole job: map, vectors on both models, transfer, evaluation, report."""

    experiment: ExperimentConfig = field(default_factory=ExperimentConfig)
    """The experiment."""
    out: str = "lrt-demo"
    """Output directory (map, vectors, results.json, report.html, config.json)."""


@writes_output
def run(cfg: DemoRun, out: Output) -> int:
    from ..pipelines.experiment import run_experiment
    from ..report.html import write_report
    from ..evaluate.verdict import verdict_lines
    from ..report.tables import map_summary_rows, show_steering_summary, show_warnings

    quiet_progress(cfg.experiment.harvest.progress)
    results = run_experiment(cfg.experiment, out.target)
    write_report(out.target)
    m, models = results["map"], results["models"]
    show(map_summary_rows(models["source"]["name"], models["source"]["layer"], models["target"]["name"],
                          models["target"]["layer"], m), title="\nmap")
    show_warnings(m)
    show_steering_summary(results["steering"])
    v = results["verdict"]
    show([[k, val] for k, val in [
        ("cosine(transferred, native)", results["vectors"]["cosine_to_native"]["transferred_direction"]),
        ("transferred beats every random vector (|slope|)", v["transferred_beats_all_random"]),
        ("native beats every random vector (|slope|)", v["native_beats_all_random"]),
        ("better transfer mode", v["better_transfer_mode"]),
        ("total seconds", results["timings"]["total"])]], title="\nverdict")
    print("  " + "\n  ".join(verdict_lines(results["steering"], v)))
    print(f"\nreport: {out.path / 'report.html'}\nresults: {out.path / 'results.json'}")
    return 0


def register(sub) -> None:
    command(sub, "demo", "the whole job on the embedded family (no download): map, vectors, report", run, DemoRun)
