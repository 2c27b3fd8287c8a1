"""``lrt evaluate``: saved vectors on the model they are applied to — native vs others vs random."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..evaluate.config import EvalConfig, TestSetConfig
from ..models.config import LoadConfig
from .common import output_dir, record
from .options import command


@dataclass
class EvaluateRun:
    """Evaluate vectors on the target: native vs transferred vs random."""

    model: str
    """The model the vectors are applied to (the target)."""
    native: str
    """Native vector directory (computed on this model): the reference, and where the layer comes from."""
    out: str
    """Output directory (results.json + config.json)."""
    vector: list[str] = field(default_factory=list)
    """Other vector directories (repeatable)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""
    testset: TestSetConfig = field(default_factory=TestSetConfig)
    """What the vectors are evaluated on."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """The α grid and random baselines."""


def run(cfg: EvaluateRun) -> int:
    from ..evaluate.verdict import verdict
    from ..io.config import flatten
    from ..io.results import make_results, write_results
    from ..models.load import load_model
    from ..pipelines.experiment import cosines_to_native, evaluate_on
    from ..report.tables import show_steering_summary
    from ..steering.vectors import SteeringVector

    out = output_dir(cfg.out)
    lm = load_model(cfg.model, cfg.load.dtype, cfg.load.device)
    native = SteeringVector.load(cfg.native)
    native.check_model(lm)
    loaded = {"native": native}
    for path in cfg.vector:
        v = SteeringVector.load(path)
        v.check_model(lm)
        loaded[v.meta.get("origin", Path(path).name).replace("-", "_")] = v
    vectors = {n: v.vector for n, v in loaded.items()}
    s = evaluate_on(lm, native.layer, vectors, native.median_norm, cfg.testset, cfg.eval)
    models = {"source": None, "target": {"name": lm.name, "layers": lm.n_layers, "width": lm.d_model,
                                         "layer": native.layer}}
    vec = {"concept": native.meta.get("concept"), "cosine_to_native": cosines_to_native(vectors),
           "norms": {n: v.norm for n, v in loaded.items()}}
    settings = flatten(cfg)
    write_results(out, make_results("evaluate", settings, models, vec, s, verdict(s)))
    record(out, cfg)
    show_steering_summary(s)
    print(f"\nresults written to {out}/results.json (lrt report {out})")
    return 0


def register(sub) -> None:
    command(sub, "evaluate", "evaluate vectors on the target: native vs transferred vs random", run, EvaluateRun)
