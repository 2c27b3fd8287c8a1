"""Configs: flags come from the config dataclasses, --config FILE sets any option (flags win), every run writes
the resolved config.json, and that file re-runs the command exactly."""

import json

import pytest
import torch

from lrt.cli import build_parser, main
from lrt.errors import ConfigError
from lrt.io.config import build, flatten, option_names
from lrt.maps.affine import AffineMap
from lrt.pipelines.config import ExperimentConfig


def test_flags_show_docstrings_and_defaults():
    sub = build_parser()._subparsers._group_actions[0].choices
    text = sub["fit-map"].format_help()
    assert "Ridge penalty, relative to the mean eigenvalue" in text and "(default: 1e-06,1e-05,0.0001," in text
    assert "--keep-first-token" in text and "--no-progress" in text
    assert "(default: 60000)" in sub["demo"].format_help()      # the demo's own budget, declared once
    # a group's help as its parent resolves it: the study's layers start the layer search at --first-depth
    study = " ".join(sub["study"].format_help().split())
    assert "the layer search's first candidate. Default: the block at --first-depth" in study
    assert "Default: the middle block" not in study
    assert "Default: the middle block" in " ".join(text.split())


def test_build_uses_group_defaults_and_validates():
    cfg = build(ExperimentConfig, {"alpha_max": 0.5, "seed": 3})
    assert cfg.harvest.tokens == 60_000 and cfg.harvest.batch_size == 8
    assert cfg.eval.alphas[0] == -0.5 and cfg.eval.seed == cfg.fit.seed == cfg.vectors.seed == 3
    assert set(flatten(cfg)) == option_names(ExperimentConfig)
    with pytest.raises(ConfigError, match="must contain 0"):
        build(ExperimentConfig, {"alphas": [0.1, 0.2]})
    with pytest.raises(ConfigError, match="tokens must be positive"):
        build(ExperimentConfig, {"tokens": 0})


def fit_args(pair, corpus, out):
    return ["fit-map", "--source", str(pair[0]), "--target", str(pair[1]), "--corpus", str(corpus),
            "--context", "64", "--out", str(out), "--no-progress"]


def test_config_file_then_flags_then_config_json_reruns(tiny_pair, tiny_corpus, tmp_path, capsys):
    toml = tmp_path / "run.toml"
    toml.write_text('[harvest]\ntokens = 3000\nbatch-size = 4\n[fit]\nridge = 0.01\nsource_layer = 1\n')
    assert main(fit_args(tiny_pair, tiny_corpus, tmp_path / "a") + ["--config", str(toml), "--ridge", "0.1"]) == 0
    cfg = json.loads((tmp_path / "a" / "config.json").read_text())
    assert cfg["tokens"] == 3000 and cfg["batch_size"] == 4 and cfg["source_layer"] == 1
    assert cfg["ridge"] == 0.1                                       # the flag beats the file
    assert cfg["target_layer"] == 2                                  # resolved: the relative-depth default
    cfg["out"] = str(tmp_path / "b")
    (tmp_path / "b.json").write_text(json.dumps(cfg))
    assert main(["fit-map", "--config", str(tmp_path / "b.json")]) == 0
    a, b = AffineMap.load(tmp_path / "a"), AffineMap.load(tmp_path / "b")
    assert torch.equal(a.A, b.A) and a.meta["ridge"] == 0.1
    (tmp_path / "bad.toml").write_text("tokenz = 5\n")
    assert main(fit_args(tiny_pair, tiny_corpus, tmp_path / "c") + ["--config", str(tmp_path / "bad.toml")]) == 2
    assert "unknown option(s) tokenz" in capsys.readouterr().err


def test_required_option_missing_exits_2(tmp_path):
    with pytest.raises(SystemExit) as e:
        main(["steer", "--model", "zoo-xs", "--out", str(tmp_path / "v")])
    assert e.value.code == 2


SHARED = {"seed", "chat", "progress", "balance"}   # one flag on purpose: the same value belongs in every group


@pytest.mark.parametrize("name", ["fit-map", "steer", "transfer", "evaluate", "generate", "demo", "sweep-layers",
                                  "stitch", "sae-train", "sae-transfer", "sae-evaluate",
                                  "sae-compare-init", "probe-train", "probe-compare"])
def test_no_option_means_two_things(name):
    """An option name in two groups of one command must be one of the deliberately shared ones; and the resolved
    config of the defaults rebuilds to itself (what re-running a config.json does)."""
    import dataclasses
    import typing

    from lrt.cli import demo, evaluate, fit_map, generate, probe, sae, sae_study, steer, sweep
    from lrt.io.config import group_type

    cls = {"fit-map": fit_map.FitMapRun, "steer": steer.SteerRun, "transfer": steer.TransferRun,
           "evaluate": evaluate.EvaluateRun, "generate": generate.GenerateRun, "demo": demo.DemoRun,
           "sweep-layers": sweep.SweepRun, "stitch": sweep.StitchRun, "sae-train": sae.SAETrainRun,
           "sae-transfer": sae.SAETransferRun, "sae-evaluate": sae.SAEEvaluateRun,
           "sae-compare-init": sae_study.SAECompareInitRun, "probe-train": probe.ProbeTrainRun,
           "probe-compare": probe.ProbeCompareRun}[name]
    owners: dict[str, list[str]] = {}

    def walk(c):
        hints = typing.get_type_hints(c)
        for f in dataclasses.fields(c):
            sub = group_type(hints[f.name])
            if sub is not None:
                walk(sub)
            else:
                owners.setdefault(f.name, []).append(c.__name__)
    walk(cls)
    clashes = {n: o for n, o in owners.items() if len(o) > 1 and n not in SHARED}
    assert not clashes
    required = {"out": "o", "model": "m", "layer": 0, "native": "n", "vector": "v", "map": "m", "prompt": ["p"],
                "sae": "s", "up": "u"}
    first = build(cls, {k: v for k, v in required.items() if k in owners})
    if name in ("transfer", "evaluate"):
        first.vector = ["v"] if name == "evaluate" else "v"
    assert flatten(build(cls, flatten(first))) == flatten(first)
