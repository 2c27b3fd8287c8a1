"""The shipped family: loads offline with plain transformers, matches its cards, is a family, maps transfer."""

import gzip
import json
import math

import numpy as np
import pytest
import torch

from lrt import zoo
from lrt.cli import main
from lrt.maps.config import FitConfig
from lrt.maps.fit import fit_map
from lrt.harvest.config import HarvestConfig
from lrt.models import load_model
from lrt.models.tokenizer_check import check_tokenizers
from lrt.zoo.training.card import EVAL_SEQS
from lrt.zoo.training.config import EOT
from lrt.zoo.training.recipe import eval_loss

from conftest import make_docs, write_jsonl

FAMILY = json.loads((zoo.root() / "family.json").read_text())


def heldout_stream(tokenizer) -> np.ndarray:
    eot = tokenizer.convert_tokens_to_ids(EOT)
    ids = []
    with gzip.open(zoo.heldout_text(), "rt", encoding="utf-8") as f:
        for line in f:
            ids += tokenizer(json.loads(line)["text"], verbose=False)["input_ids"] + [eot]
            if len(ids) > EVAL_SEQS * FAMILY["heldout_slice"]["seq_len"]:
                break
    return np.asarray(ids, dtype=np.int64)


def test_all_three_sizes_shipped_and_small():
    assert zoo.available() == ["xs", "s", "m"]
    total = sum(f.stat().st_size for f in zoo.root().rglob("*") if f.is_file())
    assert total <= 30 * 2**20
    widths = [FAMILY["models"][n]["width"] for n in ("xs", "s", "m")]
    assert widths == sorted(set(widths))          # widths strictly increase


@pytest.mark.parametrize("name", ["xs", "s", "m"])
def test_loads_offline_and_matches_card(name, monkeypatch):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    d = zoo.path(name)
    model = AutoModelForCausalLM.from_pretrained(d, dtype=torch.float32).eval()
    tok = AutoTokenizer.from_pretrained(d)
    loss = eval_loss(model, heldout_stream(tok), FAMILY["heldout_slice"]["seq_len"], EVAL_SEQS)
    card = FAMILY["models"][name]["heldout_loss"]
    assert abs(loss - card) / card < 0.02, (loss, card)
    assert "held-out loss" in (d / "README.md").read_text() and (d / "loss_curve.png").exists()


def test_family_beats_unigram_and_smallest_is_worst():
    losses = {n: FAMILY["models"][n]["heldout_loss"] for n in ("xs", "s", "m")}
    assert max(losses.values()) < FAMILY["unigram_baseline_loss"] - 1.5   # measured: ≥ 2.15 nats below
    assert losses["xs"] > losses["s"] and losses["xs"] > losses["m"]


def test_family_loss_strictly_decreasing_with_size():
    losses = [FAMILY["models"][n]["heldout_loss"] for n in ("xs", "s", "m")]   # measured 5.151 > 4.994 > 4.864
    assert losses[0] - 0.05 > losses[1] and losses[1] - 0.05 > losses[2], losses


def test_tokenizers_identical():
    files = [(zoo.path(n) / "tokenizer.json").read_bytes() for n in ("xs", "s", "m")]
    assert files[0] == files[1] == files[2]
    toks = [load_model(f"zoo-{n}").tokenizer for n in ("xs", "s", "m")]
    for a in toks:
        for b in toks:
            check_tokenizers(a, b)


def test_map_smallest_to_largest_beats_shuffled():
    card = FAMILY["map_smallest_to_largest"]
    xs, m = load_model(card["source"]), load_model(card["target"])
    hc = HarvestConfig(corpus=str(zoo.heldout_text()), tokens=60_000, context=128, batch_size=16, progress=False)
    amap = fit_map(xs, m, card["source_layer"], card["target_layer"], hc, FitConfig())
    held = amap.meta["metrics"]["heldout"]
    ctrl = amap.meta["metrics"]["shuffled_control_heldout"]
    print(f"\nzoo-xs L0 → zoo-m L1: held-out R² {held['r2']:.3f} (shuffled {ctrl['r2']:.3f}), "
          f"cosine {held['cosine_mean']:.3f}, rows {held['rows']}")
    assert amap.meta["tokens"]["train_rows"] + amap.meta["tokens"]["heldout_rows"] >= 50_000
    assert held["r2"] > ctrl["r2"] + 0.3
    assert held["r2"] >= card["heldout_r2"] - 0.05     # the card's number (same text, other map split salt)


def test_zoo_train_bad_input(tmp_path, capsys):
    corpus = write_jsonl(tmp_path / "c.jsonl", make_docs(20))
    assert main(["zoo", "train", "--corpus", str(tmp_path / "none.jsonl"), "--out", str(tmp_path / "o")]) == 2
    assert "does not exist" in capsys.readouterr().err
    notext = write_jsonl(tmp_path / "n.jsonl", [{"body": "x"}])
    assert main(["zoo", "train", "--corpus", str(notext), "--out", str(tmp_path / "o2")]) == 2
    assert "no 'text' field" in capsys.readouterr().err
    assert main(["zoo", "train", "--corpus", str(corpus), "--sizes", "t:30x1:4", "--out", str(tmp_path / "o3")]) == 2
    assert "not divisible" in capsys.readouterr().err
    (tmp_path / "o4").mkdir()
    (tmp_path / "o4" / "family.json").write_text("{}")
    assert main(["zoo", "train", "--corpus", str(corpus), "--out", str(tmp_path / "o4")]) == 2
    assert "--overwrite" in capsys.readouterr().err


def test_zoo_train_tiny_family_end_to_end(tmp_path, capsys):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    corpus = write_jsonl(tmp_path / "c.jsonl", make_docs(200))
    argv = ["zoo", "train", "--corpus", str(corpus), "--sizes", "a:32x1:2,b:48x2:4", "--tokens", "8192",
            "--vocab-size", "400", "--seq-len", "64", "--out", str(tmp_path / "fam")]
    assert main(argv) == 0
    fam = json.loads((tmp_path / "fam" / "family.json").read_text())
    for n in ("a", "b"):
        d = tmp_path / "fam" / f"zoo-{n}"
        AutoModelForCausalLM.from_pretrained(d)
        AutoTokenizer.from_pretrained(d)
        assert math.isfinite(fam["models"][n]["heldout_loss"]) and (d / "README.md").exists()
    assert fam["models"]["b"]["tokens_seen"] == fam["models"]["a"]["tokens_seen"] == 8192
    assert main(argv) == 2            # a family is there: refuse without --overwrite


def test_training_resumes_from_checkpoint(tmp_path, monkeypatch):
    """Interrupted after a checkpoint, a rerun resumes and ends exactly where an uninterrupted run does."""
    import lrt.zoo.training.loop as train_mod
    from lrt.zoo.training.config import TrainConfig, ZooSize
    from lrt.zoo.training.loop import train_family

    corpus = write_jsonl(tmp_path / "c.jsonl", make_docs(150))

    def cfg(out):
        return TrainConfig(corpus=str(corpus), out=str(tmp_path / out), sizes=[ZooSize("a", 32, 1, 2)],
                           vocab_size=400, seq_len=32, batch_size=4, tokens=8 * 4 * 32, checkpoint_every=3)

    straight = train_family(cfg("straight"))["models"]["a"]
    real_lr = train_mod.lr_at

    def interrupt(step, total, peak):
        if step == 5:
            raise KeyboardInterrupt
        return real_lr(step, total, peak)

    monkeypatch.setattr(train_mod, "lr_at", interrupt)
    with pytest.raises(KeyboardInterrupt):
        train_family(cfg("resumed"))
    state = json.loads((tmp_path / "resumed" / ".ckpt-a" / "state.json").read_text())
    assert state["step"] == 3                       # the last checkpoint before the interruption
    monkeypatch.setattr(train_mod, "lr_at", real_lr)
    resumed = train_family(cfg("resumed"))["models"]["a"]
    assert resumed["steps"] == straight["steps"] == 8
    assert resumed["heldout_loss"] == pytest.approx(straight["heldout_loss"], rel=1e-5)


def test_parallel_jobs_train_the_same_family(tmp_path):
    """--jobs 2 trains the sizes in two processes; the models equal those of a one-process run."""
    from lrt.zoo.training.config import TrainConfig, ZooSize
    from lrt.zoo.training.loop import train_family

    corpus = write_jsonl(tmp_path / "c.jsonl", make_docs(150))

    def cfg(out, jobs):
        return TrainConfig(corpus=str(corpus), out=str(tmp_path / out), sizes=[ZooSize("a", 32, 1, 2), ZooSize("b", 48, 2, 4)],
                           vocab_size=400, seq_len=32, batch_size=4, tokens=6 * 4 * 32, threads=1, jobs=jobs)

    one = train_family(cfg("one", 1))
    two = train_family(cfg("two", 2))
    assert two["recipe"]["jobs"] == 2
    for n in ("a", "b"):
        assert two["models"][n]["steps"] == 6
        assert two["models"][n]["heldout_loss"] == pytest.approx(one["models"][n]["heldout_loss"], rel=1e-4)
