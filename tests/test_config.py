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
    assert "Ridge penalty, relative to the mean eigenvalue" in text and "(default: 1e-06)" in text
    assert "--keep-first-token" in text and "--no-progress" in text
    assert "(default: 60000)" in sub["demo"].format_help()      # the demo's own budget, declared once


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
