"""What a new user met in a fresh clone: mismatched map pairs, stale outputs, model paths written two ways, torchrun
refusals, corpora checked late, missing progress bars and summary lines, units, and messages."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import pytest
import torch

from lrt.cli import main
from lrt.errors import ConfigError
from lrt.maps.affine import AffineMap
from lrt.models.load import load_model
from lrt.steering.vectors import SteeringVector

from conftest import make_docs, write_jsonl

Q = ["--no-progress"]


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def one_error(err: str) -> str:
    """The stderr of a refused command: exactly one line, the lrt: error line."""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("lrt: error:"), err
    return lines[0]


@pytest.fixture
def no_models(monkeypatch):
    """Any model load fails the test: what is checked must be checked before the models load."""
    def refuse(*a, **k):
        raise AssertionError("a model was loaded before the inputs were checked")
    monkeypatch.setattr("lrt.models.load.load_model", refuse)


def affine(tmp: Path, name: str, source="zoo-xs", target="zoo-m", ls=0, lt=0, ds=128, dt=256, **meta) -> Path:
    torch.manual_seed(0)
    AffineMap(torch.randn(dt, ds) * 0.01, torch.zeros(dt), source, target, ls, lt,
              {"tokens": {"train_rows": 100, "heldout_rows": 10}, "harvest": {"tokens": 1000},
               "norms": {"source": {"median": 1.0}, "target": {"median": 2.0}}, **meta}).save(tmp / name)
    return tmp / name


# 1. stitch refuses an inverse of another pair ---------------------------------------------------------------------

def test_stitch_refuses_an_inverse_of_another_layer_pair(tmp_path, capsys, no_models):
    up = affine(tmp_path, "xm")                                            # zoo-xs L0 → zoo-m L0
    other = affine(tmp_path, "inv13", "zoo-m", "zoo-xs", 3, 1, 256, 128)   # zoo-m L3 → zoo-xs L1
    code, out, err = run(["stitch", "--map", str(up), "--inverse", str(other), "--out", str(tmp_path / "st")] + Q,
                         capsys)
    assert code == 2 and "L3" in one_error(err) and "--inverse" in err
    assert not (tmp_path / "st").exists() and out == ""
    shutil.copytree(other, up / "inverse")                                 # the same map, picked up beside MAP
    code, _, err = run(["stitch", "--map", str(up), "--out", str(tmp_path / "st")] + Q, capsys)
    assert code == 2 and "L3" in one_error(err) and not (tmp_path / "st").exists()


def test_an_inverse_from_another_run_is_refused(tmp_path, capsys, no_models):
    up = affine(tmp_path, "xm")
    affine(up, "inverse", "zoo-m", "zoo-xs", 0, 0, 256, 128, harvest={"tokens": 5000})   # same pair, other fit
    code, _, err = run(["probe", "compare", "--up", str(up), "--out", str(tmp_path / "p")], capsys)
    assert code == 2 and "another run" in one_error(err)
    affine(tmp_path, "down10", "zoo-m", "zoo-xs", 1, 0, 256, 128)                       # explicit, other layers
    code, _, err = run(["probe", "compare", "--up", str(up), "--down", str(tmp_path / "down10"), "--out",
                        str(tmp_path / "p")], capsys)
    assert code == 2 and "(--down)" in one_error(err)
    narrow = affine(tmp_path, "narrow", ds=64)                             # zoo-xs is 128 wide, not 64
    code, _, err = run(["probe", "compare", "--up", str(narrow), "--out", str(tmp_path / "p")], capsys)
    assert code == 2 and "width 128" in one_error(err) and not (tmp_path / "p").exists()


# 2. outputs cannot go stale ---------------------------------------------------------------------------------------

def fit(pair, corpus, out, *extra):
    return ["fit-map", "--source", str(pair[0]), "--target", str(pair[1]), "--corpus", str(corpus), "--tokens",
            "1500", "--context", "32", "--batch-size", "4", "--out", str(out), *extra] + Q


def test_a_second_fit_into_the_same_out_is_refused_or_replaces_it_whole(tiny_pair, tiny_corpus, tmp_path, capsys):
    out = tmp_path / "twice"
    assert run(fit(tiny_pair, tiny_corpus, out, "--both", "--source-layer", "0", "--target-layer", "0"), capsys)[0] == 0
    assert (out / "inverse" / "map.json").exists()
    code, _, err = run(fit(tiny_pair, tiny_corpus, out, "--source-layer", "1", "--target-layer", "2"), capsys)
    assert code == 2 and "--overwrite" in one_error(err) and "--resume" in err
    first = AffineMap.load(out)
    assert (out / "inverse").exists()                                # the first run's outputs are untouched
    code, _, _ = run(fit(tiny_pair, tiny_corpus, out, "--source-layer", "1", "--target-layer", "2", "--overwrite"),
                     capsys)
    assert code == 0
    m = AffineMap.load(out)
    assert (m.source_layer, m.target_layer) == (1, 2) != (first.source_layer, first.target_layer)
    assert not (out / "inverse").exists()                            # nothing of the old run beside the new one
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["both"] is False and "overwrite" not in cfg
    assert [p.name for p in tmp_path.iterdir()] == ["twice"]         # no temporary directory left


def test_a_failed_overwrite_leaves_the_old_outputs(tmp_path, capsys, monkeypatch):
    vec = tmp_path / "v"
    SteeringVector(torch.randn(128), "zoo-xs", 0, "mean", 4, {"layer_median_norm": 1.0}).save(vec)
    m = affine(tmp_path, "m")
    out = tmp_path / "t"
    argv = ["transfer", "--vector", str(vec), "--map", str(m), "--out", str(out)]
    assert run(argv, capsys)[0] == 0
    (out / "stray.txt").write_text("from before")
    code, _, err = run(argv, capsys)
    assert code == 2 and "already holds files" in one_error(err) and "--resume" not in err
    old = (out / "vector.safetensors").read_bytes()

    def broken(self, directory):
        (Path(directory) / "half.bin").write_bytes(b"x")
        raise ConfigError("disk full")
    monkeypatch.setattr(SteeringVector, "save", broken)
    assert run(argv + ["--overwrite"], capsys)[0] == 2
    assert (out / "vector.safetensors").read_bytes() == old and (out / "stray.txt").exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m", "t", "v"]
    monkeypatch.undo()
    assert run(argv + ["--overwrite"], capsys)[0] == 0
    assert not (out / "stray.txt").exists() and (out / "vector.json").exists()
    with pytest.raises(SystemExit):                                         # transfer cannot resume
        main(argv + ["--resume"])
    assert "unrecognized arguments: --resume (see lrt transfer --help)" in one_error(capsys.readouterr().err)


def test_probe_train_writes_then_refuses_then_replaces(tmp_path, capsys):
    argv = ["probe", "train", "--model", "zoo-xs", "--layer", "0", "--task", "sentiment", "--per-class", "12",
            "--max-tokens", "32", "--out", str(tmp_path / "p")]
    code, out, _ = run(argv, capsys)
    assert code == 0 and "probe saved to" in out and (tmp_path / "p" / "probe.json").exists()
    assert run(argv, capsys)[0] == 2 and run(argv + ["--overwrite"], capsys)[0] == 0


def test_a_second_demo_says_to_overwrite(tmp_path, capsys, monkeypatch, no_models):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "lrt-demo").mkdir()
    (tmp_path / "lrt-demo" / "results.json").write_text("{}")
    code, _, err = run(["demo"] + Q, capsys)
    assert code == 2 and "'lrt-demo'" in one_error(err) and "--overwrite" in err


def test_study_refuses_a_used_folder_through_the_shared_rule(tmp_path, capsys, no_models):
    (tmp_path / "s").mkdir()
    (tmp_path / "s" / "config.json").write_text("{}")
    code, _, err = run(["study", "--behaviours", "caa:refusal", "--out", str(tmp_path / "s")], capsys)
    assert code == 2 and "--overwrite" in one_error(err) and "--resume" in err
    code, _, err = run(["study", "--behaviours", "caa:refusal", "--out", str(tmp_path / "s"), "--resume",
                        "--overwrite"], capsys)
    assert code == 2 and "give one of them" in one_error(err)


def test_overwrite_swaps_in_what_the_run_wrote(tmp_path):
    from lrt.cli.common import Output

    out = tmp_path / "o"
    out.mkdir()
    (out / "old.txt").write_text("old")
    with Output(out, overwrite=True) as o:
        assert o.replacing and o.target != out and not o.target.exists()
        (o.open() / "new.txt").write_text("new")
        assert (out / "old.txt").exists()                              # nothing changes until the run succeeds
    assert sorted(p.name for p in out.iterdir()) == ["new.txt"] and os.listdir(tmp_path) == ["o"]
    with Output(tmp_path / "fresh") as o:                              # a new directory: written in place
        assert o.target == tmp_path / "fresh" and not o.replacing


# 3. one model, paths written two ways -----------------------------------------------------------------------------

def test_a_vector_of_an_absolute_path_evaluates_on_the_relative_one(tiny_pair, tmp_path, monkeypatch):
    from lrt.cli.evaluate import EvaluateRun, load_vectors
    from lrt.data.contrasts import TextContrast
    from lrt.steering.vectors import text_vector

    absolute = tiny_pair[0].resolve()
    lm = load_model(str(absolute))
    assert lm.fingerprint
    docs = [d["text"] for d in make_docs(8)]
    text_vector(lm, TextContrast(docs[:4], docs[4:]), 1).save(tmp_path / "v")
    assert SteeringVector.load(tmp_path / "v").meta["model_fingerprint"] == lm.fingerprint
    monkeypatch.chdir(absolute.parent)
    relative = load_model(absolute.name)                               # the same directory, written relatively
    cfg = EvaluateRun(model=absolute.name, native=str(tmp_path / "v"), out=str(tmp_path / "e"))
    assert set(load_vectors(cfg, relative)) == {"native"}
    copy = shutil.copytree(absolute, tmp_path / "copy")                # a copy: the same content
    assert set(load_vectors(cfg, load_model(str(copy)))) == {"native"}
    with pytest.raises(ConfigError, match="was made for"):            # another model of the same width
        load_vectors(cfg, load_model(str(_other_same_width(tmp_path, absolute))))


def _other_same_width(tmp_path: Path, model_dir: Path) -> Path:
    from transformers import AutoModelForCausalLM

    other = tmp_path / "other"
    torch.manual_seed(99)
    m = AutoModelForCausalLM.from_pretrained(model_dir)
    with torch.no_grad():
        for p in m.parameters():
            p.add_(torch.randn_like(p))
    m.save_pretrained(other)
    for f in model_dir.iterdir():
        if "token" in f.name or f.name == "special_tokens_map.json":
            shutil.copy(f, other / f.name)
    return other


# 4. torchrun: one refusal line ------------------------------------------------------------------------------------

@pytest.mark.parametrize("rank", [0, 1])
def test_under_torchrun_only_rank_0_prints_the_refusal(rank, tmp_path, capsys, monkeypatch):
    for k, v in {"RANK": rank, "LOCAL_RANK": rank, "WORLD_SIZE": 2, "LOCAL_WORLD_SIZE": 2, "GROUP_RANK": 0,
                 "MASTER_ADDR": "127.0.0.1", "MASTER_PORT": 29999, "TORCHELASTIC_RUN_ID": "test"}.items():
        monkeypatch.setenv(k, str(v))
    code, out, err = run(["steer", "--model", "zoo-xs", "--layer", "0", "--out", str(tmp_path / "v")], capsys)
    assert code == 2 and out == ""
    if rank:
        assert err == ""
    else:
        assert "runs in one process" in one_error(err)
    with pytest.raises(SystemExit) as e:                                # a bad command line, too
        main(["steer", "--bogus"])
    err = capsys.readouterr().err
    assert e.value.code == 2 and (err == "" if rank else "--bogus" in one_error(err))


# 5. corpora and maps checked before the models load; bars closed before the error ---------------------------------

@pytest.mark.parametrize("records,msg", [([], "no non-empty 'text'"), ([{"body": "hello"}], "no 'text' field")])
def test_a_corpus_without_text_fails_before_the_models_load(records, msg, tmp_path, capsys, no_models):
    corpus = write_jsonl(tmp_path / "c.jsonl", records)
    code, _, err = run(["fit-map", "--corpus", str(corpus), "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and msg in one_error(err) and "(--corpus)" in err
    code, _, err = run(["sae", "evaluate", "--sae", str(tmp_path), "--model", "zoo-xs", "--eval-corpus", str(corpus)],
                       capsys)
    assert code == 2 and "(--eval-corpus)" in one_error(err)


def test_an_error_mid_harvest_is_not_glued_to_the_progress_bar(tiny_pair, tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "c.jsonl", make_docs(30) + [{"doc_id": "bad", "body": "no text"}])
    code, _, err = run(["fit-map", "--source", str(tiny_pair[0]), "--target", str(tiny_pair[1]), "--corpus",
                        str(corpus), "--tokens", "1500", "--context", "32", "--out", str(tmp_path / "m")], capsys)
    assert code == 2 and err.count("lrt: error:") == 1
    last = err.rstrip("\n").split("\n")[-1]
    assert last.startswith("lrt: error:") and "no 'text' field" in last       # its own line, and the last one


# 6. sweep summary, generate ---------------------------------------------------------------------------------------

def test_sweep_prints_many_to_one_gains_and_solves_each_map_once(tiny_pair, tiny_corpus, tmp_path, capsys):
    code, out, err = run(["sweep-layers", "--source", str(tiny_pair[0]), "--target", str(tiny_pair[1]),
                          "--source-layers", "0,1", "--target-layers", "1,2", "--corpus", str(tiny_corpus),
                          "--tokens", "1500", "--context", "32", "--batch-size", "4", "--eval-tokens", "600",
                          "--eval-context", "32", "--eval-corpus", str(tiny_corpus), "--out", str(tmp_path / "s")],
                         capsys)
    assert code == 0
    assert "many-to-one" in out and "R² gain over best single" in out and "CE gain over best single (nats)" in out
    assert "+ over target (%)" in out and "solve:" in err
    many = json.loads((tmp_path / "s" / "results.json").read_text())["many_to_one"]
    gain = next(r for r in many if r.get("stitched_ce_gain") is not None)["stitched_ce_gain"]
    assert f"{gain:.4g}" in out


def test_sweep_maps_are_solved_once(tiny_pair, tiny_corpus):
    from lrt.harvest.config import HarvestConfig
    from lrt.maps.sweep import sweep_layers

    src, tgt = load_model(str(tiny_pair[0])), load_model(str(tiny_pair[1]))
    sw = sweep_layers(src, tgt, [0, 1], [1], HarvestConfig(corpus=str(tiny_corpus), tokens=1200, context=32,
                                                           batch_size=4, progress=False))
    assert sw.fit_map(0, 1) is sw.fit_map(0, 1) and sw.fit_map(0, 1, inverse=True) is not sw.fit_map(0, 1)


def test_generate_shows_a_bar_and_decodes_a_small_model_on_one_thread(tiny_pair, tmp_path, capsys):
    from lrt.cli.generate import decoding_threads

    lm = load_model(str(tiny_pair[0]))
    SteeringVector(torch.randn(32), str(tiny_pair[0]), 1, "mean", 4, {"layer_median_norm": 1.0}).save(tmp_path / "v")
    before = torch.get_num_threads()
    with decoding_threads(lm):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
    code, out, err = run(["generate", "--model", str(tiny_pair[0]), "--vector", str(tmp_path / "v"), "--prompt",
                          "the movie", "--max-new-tokens", "5"], capsys)
    assert code == 0 and "[unsteered]" in out and "generate:" in err and "/10" in err


# 7. units ---------------------------------------------------------------------------------------------------------

def test_fractions_are_shown_as_percent_with_the_unit_in_the_label():
    from lrt.report.sweep import STITCH_HEADERS, stitched_rows

    row = stitched_rows({"stitched": [{"source_layer": 0, "target_layer": 0, "ce": {"source→target": 5.0},
                                       "kl": {}, "relative_increase": {"source→target": 0.1357}}]})[0]
    assert row[STITCH_HEADERS.index("+ over target (%)")] == 13.57


# 8. messages, warnings, the SAE bar, argparse errors --------------------------------------------------------------

def test_store_messages_read_whatever_the_folder_is_called(tmp_path, capsys):
    store = tmp_path / "store"
    argv = ["harvest", "--model", "zoo-xs", "--layers", "0", "--tokens", "600", "--context", "32", "--out",
            str(store)] + Q
    code, out, _ = run(argv, capsys)
    assert code == 0 and "store store" not in out and f"activation store written to {store}/" in out
    code, _, err = run(argv, capsys)
    assert code == 2 and "holds a store" not in err and "--resume" in one_error(err)


def test_map_warnings_are_lines_under_a_narrow_table(tiny_pair, tmp_path, capsys):
    one = write_jsonl(tmp_path / "one.jsonl", [{"doc_id": "only", "text": "the movie was good and the plot was long"}])
    code, out, _ = run(["fit-map", "--source", str(tiny_pair[0]), "--target", str(tiny_pair[1]), "--corpus",
                        str(one), "--tokens", "100", "--heldout-percent", "0", "--out", str(tmp_path / "m")] + Q,
                       capsys)
    table = out[out.index("map saved"):out.index("WARNING:")].splitlines()[1:]      # under its title
    warnings = out[out.index("WARNING:"):].strip().splitlines()
    assert code == 0 and len(warnings) >= 2 and all(w.startswith("WARNING: ") for w in warnings)
    assert table and not any("WARNING" in line for line in table)                    # no row to widen the table


def test_sae_train_bar_counts_tokens_to_a_total(tmp_path, capsys):
    code, out, err = run(["sae", "train", "--model", "zoo-xs", "--layer", "0", "--tokens", "3000", "--context", "64",
                          "--k", "4", "--expansion", "2", "--sae-batch-size", "64", "--eval-tokens", "600",
                          "--delta-loss-tokens", "0", "--out", str(tmp_path / "sae")], capsys)
    assert code == 0 and "dead (%)" in out
    bar = [s for s in err.replace("\r", "\n").splitlines() if s.startswith("sae:")][-1]
    assert "100%" in bar and "tok" in bar


@pytest.mark.parametrize("argv,want", [
    (["steer", "--out", "x"], "the following arguments are required: --model, --layer (see lrt steer --help)"),
    (["fit-map", "--out", "x", "--bogus"], "unrecognized arguments: --bogus (see lrt fit-map --help)"),
    (["sae", "train", "--model", "zoo-xs", "--layer", "0", "--out", "x", "--k", "two"],
     "argument --k: invalid int value: 'two' (see lrt sae train --help)"),
    (["fit-map", "--out", "x", "--method", "sgd"], "argument --method: invalid choice"),
])
def test_argparse_errors_are_one_lrt_error_line(argv, want, capsys):
    with pytest.raises(SystemExit) as e:
        main(argv)
    err = capsys.readouterr().err
    assert e.value.code == 2 and want in one_error(err) and "usage:" not in err


def test_a_repeated_number_list_flag_extends_instead_of_dropping_values():
    """``--candidate-depths 0.5 --candidate-depths 0.35`` once kept only 0.35, without a word."""
    from lrt.cli import build_parser
    from lrt.cli.options import resolve
    from lrt.pipelines.config import StudyConfig

    parser = build_parser()
    argv = ["study", "--behaviours", "caa:refusal", "--out", "x", "--candidate-depths", "0.4",
            "--candidate-depths", "0.3,0.9", "--alphas=-0.1,0", "--alphas", "0.1"]
    args = parser.parse_args(argv)
    cfg = resolve(StudyConfig, args, parser)
    assert cfg.candidate_depths == [0.4, 0.3, 0.9]
    assert cfg.eval.alphas == [-0.1, 0.0, 0.1]
    assert resolve(StudyConfig, parser.parse_args(argv[:5]), parser).candidate_depths == [0.5, 0.35, 0.8]


def test_a_model_path_does_not_widen_the_map_summary():
    """A GGUF path as the model name once made the fit-map summary ~160 columns wide."""
    from lrt.report.tables import map_summary_rows, render

    meta = {"metrics": {"heldout": {"r2": 0.5}}, "method": "closed-form", "ridge": 0.1,
            "tokens": {"train_rows": 10, "heldout_rows": 2, "excluded_massive": 0},
            "norms": {"source": {"median": 1.0}, "target": {"median": 2.0}}, "seconds": {"harvest": 1.0, "fit": 0.1}}
    rows = map_summary_rows("/root/.cache/lrt-models/SmolLM2-135M-Instruct.Q4_1.gguf", 14,
                            "/a/long/folder/of/models/qwen2.5-coder-0.5b-instruct-q4_k_m.gguf", 11, meta)
    assert rows[0][1] == "SmolLM2-135M-Instruct.Q4_1.gguf L14 → qwen2.5-coder-0.5b-instruct-q4_k_m.gguf L11"
    assert max(len(line) for line in render(rows).splitlines()) <= 120
