"""``lrt evaluate``: saved vectors on the model they are applied to — native vs others vs random."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from ..evaluate.config import EvalConfig, TestSetConfig
from ..models.config import LoadConfig
from ..models.layers import LayerSpec, parse_layer
from .common import Output, OutputRun, quiet_progress, record, writes_output
from .options import command


@dataclass
class EvaluateRun(OutputRun):
    """Evaluate vectors on the target: native vs transferred vs random."""

    model: str
    """The model the vectors are applied to (the target)."""
    native: str
    """Native vector directory (computed on this model): the reference, and where the layer comes from."""
    out: str
    """Output directory (results.json + config.json)."""
    vector: list[str] = field(default_factory=list)
    """Other vector directories (repeatable); each must be for the native vector's model and layer."""
    layer: LayerSpec | None = None
    """Apply every vector at this layer instead of the native vector's own (recorded in the results)."""
    other_model: bool = False
    """Apply vectors that were computed (or transferred) for a model of another name but the same width."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""
    testset: TestSetConfig = field(default_factory=TestSetConfig)
    """What the vectors are evaluated on."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """The α grid and random baselines."""


def load_vectors(cfg: EvaluateRun, lm) -> dict:
    """The vectors by unique name (their origin, else their directory), each checked against ``lm`` and the
    evaluation layer: a vector is never applied to another model or layer unless that is asked for."""
    from ..errors import ConfigError
    from ..models.identity import same_model
    from ..steering.vectors import SteeringVector

    from ..models.tokenizer_check import tokenizer_fingerprint

    layer = parse_layer(cfg.layer)
    loaded, paths = {}, {}
    given = [cfg.native] + list(cfg.vector)
    twice = sorted({str(Path(p).resolve()) for p in given if sum(Path(q).resolve() == Path(p).resolve()
                                                                for q in given) > 1})
    if twice:
        raise ConfigError(f"vector {twice[0]} is given twice; give each vector once", option="vector")
    for path in given:
        v = SteeringVector.load(path)
        v.check_model(lm)
        if not cfg.other_model and not same_model(v.model, lm.name, v.meta.get("model_fingerprint"), lm.fingerprint):
            raise ConfigError(f"vector {path} was made for {v.model}, not {lm.name}; evaluate it on its own model, or "
                              "allow another model of the same width", option="other_model")
        tok = v.meta.get("tokenizer")
        if tok and not cfg.other_model and tok != tokenizer_fingerprint(lm.tokenizer):
            raise ConfigError(f"vector {path} was made for a model of another tokenizer ({tok}) than {lm.name}'s",
                              option="other_model")
        if layer is None and str(v.layer) != str(loaded["native"].layer if loaded else v.layer):
            raise ConfigError(f"vector {path} is at layer {v.layer} but the native vector is at layer "
                              f"{loaded['native'].layer}; give the layer to apply them all at explicitly",
                              option="layer")
        name = "native" if not loaded else v.meta.get("origin", "").replace("-", "_")
        if not name or name in loaded:
            name = Path(path).name.replace("-", "_")
        if name in loaded:
            raise ConfigError(f"two vectors would both be called {name!r} ({paths[name]} and {path}); give them "
                              "directories of different names", option="vector")
        loaded[name], paths[name] = v, path
    return loaded


@writes_output
def run(cfg: EvaluateRun, out: Output) -> int:
    from ..evaluate.verdict import verdict, verdict_lines
    from ..io.config import flatten
    from ..io.results import make_results, write_results
    from ..pipelines.experiment import cosines_to_native, evaluate_on
    from ..report.tables import show_steering_summary

    quiet_progress(cfg.eval.progress)
    lm = cfg.load.load(cfg.model)
    loaded = load_vectors(cfg, lm)
    native = loaded["native"]
    layer = parse_layer(cfg.layer) if cfg.layer is not None else native.layer
    lm.layer_index(layer)
    vectors = {n: v.vector for n, v in loaded.items()}
    records = {n: v.meta.get("data") for n, v in loaded.items()}
    s = evaluate_on(lm, layer, vectors, native.median_norm, cfg.testset, cfg.eval, records)
    models = {"source": None, "target": {"name": lm.name, "layers": lm.n_layers, "width": lm.d_model,
                                         "layer": layer, "vectors_layer": native.layer,
                                         "layer_override": cfg.layer is not None}}
    vec = {"concept": native.meta.get("concept"), "cosine_to_native": cosines_to_native(vectors),
           "norms": {n: v.norm for n, v in loaded.items()},
           "made_for": {n: {"model": v.model, "layer": v.layer} for n, v in loaded.items()}}
    settings = flatten(cfg)
    v = verdict(s)
    d = out.open()
    write_results(d, make_results("evaluate", settings, models, vec, s, v))
    record(d, cfg)
    if cfg.layer is not None:
        print(f"note: vectors of layer {native.layer} applied at layer {layer} (explicit override)")
    show_steering_summary(s)
    print("\nverdict: " + "\n  ".join(verdict_lines(s, v)))
    print(f"\nresults written to {out}/results.json (lrt report {out})")
    return 0


def register(sub) -> None:
    command(sub, "evaluate", "evaluate vectors on the target: native vs transferred vs random", run, EvaluateRun)
