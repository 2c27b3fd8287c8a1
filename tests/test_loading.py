"""Loading models (hub ids through a real local Hugging Face cache, paths, devices), artifact files (mode,
atomic writes), generate's labels, and the help of every command."""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import threading
from pathlib import Path

import pytest
import torch

from lrt.cli import build_parser, main
from lrt.errors import ModelLoadError
from lrt.io.artifacts import save_artifact
from lrt.io.files import atomic_write_bytes, atomic_write_text
from lrt.models.load import load_model

from conftest import tiny_model_dir

WIDTH = 40
COMMIT = "0123456789abcdef0123456789abcdef01234567"


@pytest.fixture(scope="module")
def tiny_llama(tmp_path_factory, tiny_tokenizer) -> Path:
    return tiny_model_dir(tmp_path_factory.mktemp("tiny"), "llama", tiny_tokenizer, WIDTH, 3)


@pytest.fixture(scope="module")
def hf_home(tmp_path_factory, tiny_llama) -> Path:
    """A Hugging Face cache holding ``tinyorg/tiny-llama`` exactly as the hub client lays it out."""
    home = tmp_path_factory.mktemp("hf_home")
    repo = home / "hub" / "models--tinyorg--tiny-llama"
    (repo / "refs").mkdir(parents=True)
    (repo / "refs" / "main").write_text(COMMIT)
    shutil.copytree(tiny_llama, repo / "snapshots" / COMMIT)
    return home


def offline(hf_home: Path) -> dict:
    overrides = ("HF_HUB_CACHE", "HUGGINGFACE_HUB_CACHE", "TRANSFORMERS_CACHE")     # would win over HF_HOME
    env = {k: v for k, v in os.environ.items() if k not in overrides}
    return {**env, "HF_HOME": str(hf_home), "HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "2"}


def lrt(args: list[str], env: dict, cwd: Path) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lrt", *args], capture_output=True, text=True, env=env, cwd=cwd,
                          timeout=300)


def one_error_line(err: str) -> str:
    assert "Traceback" not in err and err.count("lrt: error:") == 1, err
    line = err.strip().splitlines()[-1]
    assert line.startswith("lrt: error:"), err
    return line


# -- hub ids ------------------------------------------------------------------------------------------------

def test_org_hub_id_loads_from_the_local_cache(hf_home, tmp_path):
    env = offline(hf_home)
    r = lrt(["steer", "--model", "tinyorg/tiny-llama", "--layer", "1", "--out", str(tmp_path / "v"), "--max-pairs",
             "4", "--no-progress"], env, tmp_path)
    assert r.returncode == 0, r.stderr
    assert (tmp_path / "v" / "vector.safetensors").is_file() and (tmp_path / "v" / "vector.json").is_file()
    r = subprocess.run([sys.executable, "-c", "import lrt; lm = lrt.load_model('tinyorg/tiny-llama'); "
                        "print(lm.d_model, lm.n_layers)"], capture_output=True, text=True, env=env, cwd=tmp_path,
                       timeout=300)
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(WIDTH), "3"]


def test_hub_id_neither_here_nor_cached(hf_home, tmp_path):
    r = lrt(["steer", "--model", "nobody/nothing", "--layer", "1", "--out", str(tmp_path / "v"), "--no-progress"],
            offline(hf_home), tmp_path)
    assert r.returncode == 2
    line = one_error_line(r.stderr)
    assert "'nobody/nothing'" in line and "local directory" in line and str(tmp_path) in line
    assert str(hf_home / "hub") in line and "HF_HUB_OFFLINE=1" in line and "download it" in line
    assert not (tmp_path / "v").exists()


# -- the resolution rule (none of these reaches the hub) ----------------------------------------------------------

@pytest.mark.parametrize("name,msg", [
    ("/nonexistent/model", "model path '/nonexistent/model' does not exist"),
    ("./missing-model", "does not exist"),
    ("../missing-model", "does not exist"),
    ("~/missing-lrt-model", "does not exist"),
    ("org/name/extra", "does not exist"),
    ("missing.gguf", "GGUF file 'missing.gguf' does not exist"),
    ("org/missing.gguf", "GGUF file"),
])
def test_path_shaped_names_that_do_not_exist(name, msg, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(ModelLoadError, match=re.escape(msg)):
        load_model(name)


def test_existing_org_name_directory_is_local(tiny_llama, tmp_path, monkeypatch):
    shutil.copytree(tiny_llama, tmp_path / "myorg" / "mymodel")
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    lm = load_model("myorg/mymodel")
    assert lm.d_model == WIDTH and lm.name == "myorg/mymodel"


# -- devices ------------------------------------------------------------------------------------------------

@pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has CUDA")
def test_unavailable_device_is_one_clear_error(tmp_path, capsys):
    out = tmp_path / "v"
    assert main(["steer", "--model", "zoo-xs", "--layer", "0", "--device", "cuda", "--out", str(out)]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'cuda' is not available" in line and line.endswith("(--device)")
    assert not out.exists()
    with pytest.raises(ModelLoadError, match="cuda:1") as e:
        load_model("zoo-xs", device="cuda:1")
    assert e.value.option == "device"


def test_malformed_device(tmp_path, capsys):
    assert main(["steer", "--model", "zoo-xs", "--layer", "0", "--device", "gpu0", "--out", str(tmp_path / "v")]) == 2
    line = one_error_line(capsys.readouterr().err)
    assert "'gpu0' is not a torch device" in line and line.endswith("(--device)")


# -- files --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_artifact_files_get_a_normal_mode(tmp_path, umask):
    old = os.umask(umask)
    try:
        save_artifact(tmp_path, "thing", "test", {"x": torch.ones(3)}, {"note": 1})
    finally:
        os.umask(old)
    modes = {p.name: p.stat().st_mode & 0o777 for p in tmp_path.iterdir()}
    assert modes == {"thing.safetensors": 0o666 & ~umask, "thing.json": 0o666 & ~umask}


def test_failed_atomic_writes_leave_nothing_behind(tmp_path, monkeypatch):
    target = tmp_path / "x.json"
    target.write_text("old")
    with pytest.raises(UnicodeEncodeError):             # the write itself fails (a lone surrogate)
        atomic_write_text(target, "new \udc80")
    assert sorted(os.listdir(tmp_path)) == ["x.json"] and target.read_text() == "old"

    def refuse(src, dst):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "replace", refuse)             # the final rename fails
    with pytest.raises(OSError, match="No space"):
        atomic_write_bytes(target, b"new")
    with pytest.raises(OSError, match="No space"):
        save_artifact(tmp_path, "thing", "test", {"x": torch.ones(3)}, {})
    assert sorted(os.listdir(tmp_path)) == ["x.json"] and target.read_text() == "old"


def test_concurrent_writers_do_not_collide(tmp_path):
    target = tmp_path / "x.txt"
    (tmp_path / ".x.txt.tmp").write_text("another writer's file")       # the old fixed temporary name
    payloads = [str(i) * 200_000 for i in range(6)]
    errors = []

    def writer(text):
        try:
            for _ in range(10):
                atomic_write_text(target, text)
        except Exception as e:                             # noqa: BLE001 - collected and asserted below
            errors.append(e)

    threads = [threading.Thread(target=writer, args=(p,)) for p in payloads]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors
    assert target.read_text() in payloads                 # one whole write, never a mix or a partial file
    assert sorted(os.listdir(tmp_path)) == [".x.txt.tmp", "x.txt"]
    assert (tmp_path / ".x.txt.tmp").read_text() == "another writer's file"


# -- generate's labels --------------------------------------------------------------------------------------

def test_generate_labels_by_mode(tiny_llama, tmp_path, capsys):
    from lrt.steering.vectors import SteeringVector

    # a vector along the prompt's own last hidden state at layer 1, so that ablating it changes the text
    lm = load_model(tiny_llama)
    with torch.no_grad():
        h = lm.model(lm.tokenizer("the movie was", return_tensors="pt").input_ids,
                     output_hidden_states=True).hidden_states[2][0]
    vec = tmp_path / "v"
    SteeringVector(h[-1], str(tiny_llama), 1, "mean", 1, {"layer_median_norm": float(h.norm(dim=-1).median())}).save(vec)

    def generate(*extra):
        assert main(["generate", "--model", str(tiny_llama), "--vector", str(vec), "--prompt", "the movie was",
                     "--max-new-tokens", "6", *extra]) == 0
        out = capsys.readouterr().out
        unsteered = re.search(r"\n\[unsteered\] (.*)\n\[", out, re.S).group(1)
        label, text = re.search(r"\n\[(?!unsteered)([^\]\n]*)\] ([\s\S]*)$", out).groups()
        return unsteered, label, text

    assert generate()[1] == "α=0.2"
    assert generate("--mode", "clamp", "--alpha", "0.5")[1] == "clamp α=0.5"
    unsteered, label, ablated = generate("--mode", "ablate")
    assert label == "ablate" and ablated != unsteered
    assert generate("--mode", "ablate", "--alpha", "0") == (unsteered, "ablate", ablated)      # ablate ignores α
    assert generate("--mode", "clamp", "--alpha", "0") == (unsteered, "clamp α=0.0", ablated)  # clamp to 0 = ablate


# -- help ---------------------------------------------------------------------------------------------------

def parsers(parser: argparse.ArgumentParser, path: str = "lrt"):
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                assert helps.get(name), f"{path} {name} has no help"
                yield from parsers(sub, f"{path} {name}")


def test_every_option_has_help_and_shows_its_default():
    seen, bad = set(), []
    for path, parser in parsers(build_parser()):
        seen.add(path)
        for a in parser._actions:
            if isinstance(a, (argparse._HelpAction, argparse._VersionAction, argparse._SubParsersAction)):
                continue
            flag = "/".join(a.option_strings) or a.dest
            if not (a.help and a.help.strip()):
                bad.append(f"{path} {flag}: no help")
            elif a.option_strings and a.option_strings != ["--config"] \
                    and not re.search(r"\((default: \S.*|required)\)", a.help):  # --config: no file unless given
                bad.append(f"{path} {flag}: no default shown in {a.help!r}")
    assert not bad, "\n".join(bad)
    assert {"lrt report", "lrt zoo train", "lrt zoo list", "lrt generate", "lrt steer"} <= seen


def test_bare_commands_print_help_and_exit_2():
    for args, usage in ((["-m", "lrt"], "usage: lrt [-h]"), (["-m", "lrt", "zoo"], "usage: lrt zoo")):
        r = subprocess.run([sys.executable, *args], capture_output=True, text=True, timeout=120)
        assert r.returncode == 2 and r.stdout.startswith(usage), r.stdout + r.stderr
    r = subprocess.run([sys.executable, "-m", "lrt", "--version"], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and re.fullmatch(r"lrt \S+\n", r.stdout)
    r = subprocess.run([sys.executable, "-m", "lrt", "report", "--help"], capture_output=True, text=True, timeout=120)
    text = " ".join(r.stdout.split())
    assert r.returncode == 0 and "results.json" in text and "(default: RESULTS/report.html)" in text
