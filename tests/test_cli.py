"""The CLI: fit-map end to end, and each bad input gives one clear error, exit 2, nothing half-written."""

import os
import re
import subprocess
import sys

import pytest

from lrt.cli import main
from lrt.maps import AffineMap

from conftest import train_tiny_tokenizer, tiny_model_dir


def run(argv, capsys):
    code = main(argv)
    out = capsys.readouterr()
    return code, out.out, out.err


def base(pair, corpus, out, **kw):
    args = ["fit-map", "--source", str(pair[0]), "--target", str(pair[1]), "--corpus", str(corpus),
            "--tokens", "3000", "--context", "64", "--batch-size", "4", "--out", str(out), "--no-progress"]
    for k, v in kw.items():
        args += [f"--{k.replace('_', '-')}", str(v)]
    return args


def test_fit_map_cli(tiny_pair, tiny_corpus, tmp_path, capsys):
    code, out, _ = run(base(tiny_pair, tiny_corpus, tmp_path / "m", source_layer=1, target_layer=2), capsys)
    assert code == 0
    assert "held-out R² (all tokens)" in out and "map saved" in out
    m = AffineMap.load(tmp_path / "m")
    assert (m.source_layer, m.target_layer) == (1, 2) and m.A.shape == (48, 32)


def test_fit_map_cli_adamw(tiny_pair, tiny_corpus, tmp_path, capsys):
    code, out, _ = run(base(tiny_pair, tiny_corpus, tmp_path / "m", method="adamw", epochs=2), capsys)
    assert code == 0
    m = AffineMap.load(tmp_path / "m")
    assert m.meta["method"] == "adamw" and m.meta["adamw_history"]
    assert m.meta["metrics"]["heldout"]["mse"] > 0


@pytest.mark.parametrize("case,kw,msg", [
    ("unknown model", {"source": "/nonexistent/model"}, "does not exist"),
    ("layer range", {"source_layer": 7}, r"valid layers are 0\.\.2"),
    ("corpus missing", {"corpus": "/nonexistent/corpus.jsonl"}, "does not exist"),
    ("bad method", {}, None),
])
def test_bad_input(tiny_pair, tiny_corpus, tmp_path, capsys, case, kw, msg):
    if case == "bad method":
        with pytest.raises(SystemExit):   # argparse rejects unknown choices with exit 2
            main(base(tiny_pair, tiny_corpus, tmp_path / "o") + ["--method", "sgd"])
        return
    pair = (kw.pop("source", tiny_pair[0]), tiny_pair[1])
    corpus = kw.pop("corpus", tiny_corpus)
    code, _, err = run(base(pair, corpus, tmp_path / "o", **kw), capsys)
    assert code == 2
    last = err.strip().splitlines()[-1]
    assert last.startswith("lrt: error:") and err.count("lrt: error:") == 1
    assert re.search(msg, last)
    assert not (tmp_path / "o").exists()      # inputs are checked before anything is created


def test_tokenizer_mismatch_cli(tiny_pair, tiny_corpus, tmp_path, capsys):
    other_tok = train_tiny_tokenizer(vocab_size=300, seed_text="zebra quantum " * 40)
    other = tiny_model_dir(tmp_path, "gpt2", other_tok)
    code, _, err = run(base((tiny_pair[0], other), tiny_corpus, tmp_path / "o"), capsys)
    assert code == 2 and "do not tokenize identically" in err


def test_unwritable_out(tiny_pair, tiny_corpus, tmp_path, capsys):
    if os.geteuid() == 0:
        blocker = tmp_path / "file"
        blocker.write_text("x")
        out = blocker / "sub"      # a path under a regular file cannot be created, even by root
    else:
        ro = tmp_path / "ro"
        ro.mkdir()
        ro.chmod(0o500)
        out = ro / "sub"
    code, _, err = run(base(tiny_pair, tiny_corpus, out), capsys)
    assert code == 2 and "not writable" in err


def test_python_dash_m_and_help():
    r = subprocess.run([sys.executable, "-m", "lrt", "--help"], capture_output=True, text=True)
    assert r.returncode == 0
    for cmd in ("fit-map", "zoo", "steer", "transfer", "evaluate", "report", "generate", "demo"):
        assert cmd in r.stdout
