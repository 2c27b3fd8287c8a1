"""A researcher's first session, through the command line as the README shows it: fit-map → steer → transfer →
evaluate → report on the shipped family — and each way that path used to mislead (issue "Off the demo's path")."""

import json
import warnings

import pytest

from lrt import zoo
from lrt.cli import main
from lrt.data.packing import pack_sequences
from lrt.harvest.config import HarvestConfig
from lrt.harvest.paired import pack_sequences as harvest_batches
from lrt.maps.affine import AffineMap

from conftest import NATURAL_TEXT, make_docs, write_jsonl

HELD = str(zoo.heldout_text())
Q = ["--no-progress"]


@pytest.fixture(scope="module")
def session(tmp_path_factory):
    """fit-map, two steer runs, transfer and evaluate, as in the README (zoo-xs L0 → zoo-m L0)."""
    d = tmp_path_factory.mktemp("session")
    assert main(["fit-map", "--source", "zoo-xs", "--target", "zoo-m", "--source-layer", "0", "--target-layer", "0",
                 "--tokens", "20000", "--context", "128", "--out", str(d / "map")] + Q) == 0
    for name, model in (("small", "zoo-xs"), ("native", "zoo-m")):
        assert main(["steer", "--model", model, "--layer", "0", "--concept", "sentiment", "--max-pairs", "100",
                     "--out", str(d / name)] + Q) == 0
    assert main(["transfer", "--vector", str(d / "small"), "--map", str(d / "map"), "--out", str(d / "tr")]) == 0
    assert main(["evaluate", "--model", "zoo-m", "--native", str(d / "native"), "--vector", str(d / "tr"),
                 "--alphas", "-0.25,0,0.25", "--n-random", "4", "--bootstrap", "50", "--out", str(d / "ev")] + Q) == 0
    assert main(["report", str(d / "ev")]) == 0
    return d, json.loads((d / "ev" / "results.json").read_text())


def test_workflow_results_are_complete_and_honest(session):
    d, res = session
    assert res["command"] == "evaluate" and res["models"]["target"]["layer"] == 0
    assert set(res["steering"]["curves"]) >= {"native", "transferred_direction", "random_0", "random_3"}
    assert res["steering"]["data_overlap"] == {}                    # train-split vectors, held-out test items
    v = res["verdict"]
    assert set(v["slope"]) == {"native", "transferred_direction"} and v["native_beats_all_random"] is True
    assert v["margin_over_random"]["native"] == pytest.approx(v["slope"]["native"] - v["max_abs_random_slope"])
    assert 0 < res["vectors"]["cosine_to_native"]["transferred_direction"] <= 1
    assert res["settings"]["test_split"] == "heldout" and res["settings"]["eval_corpus"] == HELD
    for name in ("native", "small"):
        rec = json.loads((d / name / "vector.json").read_text())["data"]
        assert rec["split"] == "train" and rec["n_examples"] == 200 and len(rec["fingerprint"]) == 64
    html = (d / "ev" / "report.html").read_text()
    assert "Verdict" in html and "transferred_direction" in html and ">None<" not in html
    for sub in ("map", "native", "tr", "ev"):
        assert (d / sub / "config.json").exists()


def test_map_has_its_held_out_rows_and_sources(session):
    d, _ = session
    m = AffineMap.load(d / "map")
    t = m.meta["tokens"]
    assert t["heldout_tokens"] >= 0.1 * 20000 and t["heldout_rows"] > 1000 and not m.meta["warnings"]
    assert len(m.meta["document_tokens_by_source"]["train"]) >= 3     # sampled across the corpus, not file order
    assert m.meta["metrics"]["heldout"]["r2"] > m.meta["metrics"]["shuffled_control_heldout"]["r2"] + 0.3


def test_overlap_between_vector_and_test_items_is_refused(session, tmp_path, capsys):
    d, _ = session
    # a vector drawn from all of the held-out text shares documents with the held-out test items
    assert main(["steer", "--model", "zoo-m", "--layer", "0", "--concept-corpus", HELD, "--split", "all",
                 "--out", str(tmp_path / "leaky")] + Q) == 0
    argv = ["evaluate", "--model", "zoo-m", "--native", str(tmp_path / "leaky"), "--alphas", "-0.2,0,0.2",
            "--n-random", "2", "--bootstrap", "20", "--out", str(tmp_path / "e")] + Q
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "test items come from documents the vector 'native' was computed from" in err and "--allow-overlap" in err
    assert not (tmp_path / "e").exists()
    assert main(argv + ["--allow-overlap"]) == 0
    res = json.loads((tmp_path / "e" / "results.json").read_text())
    assert res["steering"]["data_overlap"]["native"] > 0
    # the train split of the held-out text holds no reviews: one clear error
    assert main(["steer", "--model", "zoo-m", "--layer", "0", "--concept-corpus", HELD,
                 "--out", str(tmp_path / "none")] + Q) == 2
    assert "in split 'train'" in capsys.readouterr().err


def test_vectors_are_not_applied_at_another_layer_or_under_one_name(session, tmp_path, capsys):
    d, _ = session
    assert main(["steer", "--model", "zoo-m", "--layer", "2", "--max-pairs", "20", "--out", str(tmp_path / "l2")] + Q) == 0
    base = ["evaluate", "--model", "zoo-m", "--alphas", "-0.2,0,0.2", "--n-random", "2", "--bootstrap", "20"] + Q
    assert main(base + ["--native", str(tmp_path / "l2"), "--vector", str(d / "tr"), "--out", str(tmp_path / "a")]) == 2
    assert "is at layer 0 but the native vector is at layer 2" in capsys.readouterr().err
    assert main(base + ["--native", str(tmp_path / "l2"), "--vector", str(d / "tr"), "--layer", "2",
                        "--out", str(tmp_path / "b")]) == 0
    res = json.loads((tmp_path / "b" / "results.json").read_text())
    assert res["models"]["target"]["layer"] == 2 and res["models"]["target"]["layer_override"] is True
    assert "applied at layer 2 (explicit override)" in capsys.readouterr().out
    assert main(base + ["--native", str(d / "native"), "--vector", str(d / "tr"), "--vector", str(d / "tr"),
                        "--out", str(tmp_path / "c")]) == 2
    assert "is given twice" in capsys.readouterr().err
    for k in (1, 2):                     # more transferred vectors: named by their directories, or refused
        assert main(["transfer", "--vector", str(d / "small"), "--map", str(d / "map"),
                     "--out", str(tmp_path / f"x{k}" / "tr")]) == 0
    assert main(base + ["--native", str(d / "native"), "--vector", str(d / "tr"), "--vector", str(tmp_path / "x1" / "tr"),
                        "--vector", str(tmp_path / "x2" / "tr"), "--out", str(tmp_path / "c")]) == 2
    assert "two vectors would both be called 'tr'" in capsys.readouterr().err
    assert main(base + ["--native", str(d / "small"), "--out", str(tmp_path / "d")]) == 2   # zoo-xs vector, width 128


@pytest.mark.parametrize("argv,msg", [
    (["demo", "--tokens", "0"], "tokens must be positive"),
    (["demo", "--alpha-max", "-0.2"], "alpha_max must be positive"),
    (["demo", "--alphas", "0.1,0.2"], "must contain 0"),
])
def test_demo_rejects_bad_numbers_before_work(argv, msg, tmp_path, capsys):
    assert main(argv + ["--out", str(tmp_path / "o")]) == 2
    assert msg in capsys.readouterr().err and not (tmp_path / "o").exists()


def test_held_out_quota_is_met_even_when_held_out_documents_come_last(tmp_path, tiny_tokenizer):
    docs = make_docs(200)
    held = {d["doc_id"] for d in docs[150:]}
    tally: dict = {}
    batches = list(pack_sequences(docs, tiny_tokenizer, 32, 4, 2000, lambda d: d["doc_id"] in held, 0.1,
                                  tally=tally))
    assert tally["heldout_tokens"] >= 200 and tally["train_tokens"] >= 1800
    assert sum(int(m.sum()) for _, m, h in batches if h) >= 200


def test_sampling_covers_the_corpus_not_its_first_source(tmp_path, tiny_tokenizer):
    docs = [{**d, "source": "A" if i < 150 else "B"} for i, d in enumerate(make_docs(300))]
    path = write_jsonl(tmp_path / "sorted.jsonl", docs)
    for shuffle, want in ((True, {"A", "B"}), (False, {"A"})):
        tally: dict = {}
        list(harvest_batches(HarvestConfig(corpus=str(path), tokens=1500, context=32, batch_size=4, shuffle=shuffle,
                                           progress=False), tiny_tokenizer, tally))
        assert set(tally["document_tokens_by_source"]["train"]) == want


def test_too_few_held_out_rows_is_a_warning_in_the_summary(tiny_pair, tmp_path, capsys):
    one = write_jsonl(tmp_path / "one.jsonl", [{"doc_id": "only", "text": "the movie was good and the plot was long"}])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = main(["fit-map", "--source", str(tiny_pair[0]), "--target", str(tiny_pair[1]), "--corpus", str(one),
                     "--tokens", "100", "--heldout-percent", "0", "--out", str(tmp_path / "m")] + Q)
    out = capsys.readouterr().out
    assert code == 0 and "WARNING" in out and "held-out rows" in out
    assert AffineMap.load(tmp_path / "m").meta["warnings"]


def test_progress_bars_on_long_steps(capsys, tmp_path):
    assert main(["steer", "--model", "zoo-xs", "--layer", "0", "--max-pairs", "20", "--out", str(tmp_path / "v")]) == 0
    assert "vector on zoo-xs" in capsys.readouterr().err


@pytest.mark.skipif(not NATURAL_TEXT.exists(), reason="needs ../shared")
def test_readme_concept_corpus_workflow_has_no_leak(tmp_path):
    """The README's commands with the shared corpus on both sides: vectors from train, items from held-out."""
    from lrt.data.concepts import concept_texts, sentiment_items
    from lrt.data.provenance import data_record, overlap

    texts = concept_texts("sentiment", str(NATURAL_TEXT), split="train", limit=300)
    items = sentiment_items(zoo_tokenizer(), str(NATURAL_TEXT), split="heldout")
    assert overlap(data_record(texts), items) == []
    leaky = concept_texts("sentiment", str(NATURAL_TEXT), split=None, limit=1000)
    assert overlap(data_record(leaky), items)                  # what the old default (no split) did


def zoo_tokenizer():
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(zoo.path("xs"))


def test_chat_mixture_records_its_sources(tmp_path, tiny_tokenizer):
    """Map data for instruct models: text mixed with chat-formatted A/B prompts; the rows per source are recorded,
    and the chat share is about the one asked for."""
    import copy

    from lrt.data.chat import chat_documents

    tok = copy.deepcopy(tiny_tokenizer)
    tok.chat_template = "{% for m in messages %}<{{ m['role'] }}> {{ m['content'] }}\n{% endfor %}"
    ab = tmp_path / "other" / "generate_dataset.json"
    ab.parent.mkdir()
    ab.write_text(json.dumps([{"question": f"is the plot {w} ?\n(A) yes\n(B) no", "answer_matching_behavior": "(A)",
                               "answer_not_matching_behavior": "(B)"} for w in ("good", "bad", "long") * 20]))
    docs = chat_documents(ab, tok)
    assert len(docs) == 120 and docs[0]["source"] == "chat:other" and docs[0]["text"].startswith("<user> is the plot")
    corpus = write_jsonl(tmp_path / "c.jsonl", make_docs(300))
    tally: dict = {}
    list(harvest_batches(HarvestConfig(corpus=str(corpus), tokens=3000, context=32, batch_size=4, mix=[str(ab)],
                                       mix_share=0.3, progress=False), tok, tally))
    train = tally["document_tokens_by_source"]["train"]
    share = train.get("chat:other", 0) / sum(train.values())
    assert 0.15 < share < 0.45
    with pytest.raises(Exception, match="chat template"):
        chat_documents(ab, tiny_tokenizer)
