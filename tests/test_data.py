"""Data by name: the sets shipped in the package, the `lrt data` command, names in every data option, and Hugging
Face data sets by name from a local cache (offline)."""

import glob
import gzip
import hashlib
import json
import os
import shutil
from pathlib import Path

import pytest

from lrt.cli import main
from lrt.data import registry
from lrt.data.contrasts import load_contrasts, split_options
from lrt.data.corpus import iter_documents
from lrt.data.formats import PERSONA_QUESTION, options_are_statements, to_persona, to_yes_no


def test_every_shipped_set_is_there_with_its_recorded_sha256_and_count():
    cat = registry.catalogue()
    behaviours = {n.split(":")[1].split("/")[0] for n in cat if n.startswith("caa:")}
    assert len(behaviours) == 7
    for name, rec in cat.items():
        if rec["sha256"]:
            assert hashlib.sha256(Path(rec["file"]).read_bytes()).hexdigest() == rec["sha256"], name
        if rec["kind"] in ("contrast", "test"):
            assert len(load_contrasts(name)) == rec["records"] > 0, name
    docs = list(iter_documents("lrt:text"))
    assert len(docs) == cat["lrt:text"]["records"] and {d["source"] for d in docs} >= {"brown", "movie_reviews"}
    assert sum(1 for d in docs if "/pos/" in d["doc_id"]) >= 200          # both sentiment labels, for probes
    total = sum(p.stat().st_size for p in registry.root().rglob("*") if p.is_file())
    assert total < 6e6                                                   # the package stays small (4.9 MB)


def test_every_shipped_pair_can_be_scored():
    """Every record of every shipped contrast and test set makes an item (its two answers part at one token): a
    free-text MMLU record whose correct answer was the start of the wrong one ("1 tall violet: 1 tall white")
    stopped `fit-map --contrast-sets default --contrast-pairs 60` at record 55 of mmlu-text."""
    from lrt.data.contrasts import contrast_items
    from lrt.data.formats import to_free_text
    from lrt.models.load import load_model

    tok = load_model("zoo-xs").tokenizer
    for name, rec in registry.catalogue().items():
        if rec["kind"] in ("contrast", "test"):
            assert len(contrast_items(tok, load_contrasts(name))) == rec["records"], name
    out, skipped = to_free_text(load_contrasts("mmlu")[55:56])
    assert out == [] and skipped == 1


def test_a_behaviour_name_is_its_generate_set_as_a_contrast_and_its_test_set_as_a_test():
    gen, test = load_contrasts("caa:refusal"), load_contrasts("caa:refusal", role="test")
    assert (len(gen), len(test)) == (408, 50)
    assert registry.resolve("caa:refusal", "test").name == "test.json.gz"
    with pytest.raises(Exception, match="several parts"):
        registry.lookup("caa:refusal")
    with pytest.raises(Exception, match="caa:refusal"):                  # the near names are listed
        registry.lookup("caa:refusl", "test")


def test_conversions_keep_the_matching_answer_and_balance_the_letters():
    recs = load_contrasts("caa:corrigible-neutral-HHH")
    yn, skipped = to_yes_no(recs)
    assert skipped == 0 and [c.positive for c in yn[:4]] == [" Yes", " No", " Yes", " No"]
    assert f'"{recs[0].prompt.split("(A)")[1].split("(B)")[0].strip()}"' in yn[0].prompt or \
        f'"{recs[0].prompt.split("(B)")[1].strip()}"' in yn[0].prompt
    pe, _ = to_persona(recs)
    letters = [c.positive for c in pe[:8]]
    assert letters.count("(A)") == letters.count("(B)") == 4              # the matching letter alternates
    assert all('"\n\nChoices:\n(A) ' in c.prompt for c in pe[:8])
    # corrigible-neutral-HHH's options answer their questions ("Yes", "No"): the statement is question and answer
    stem, match, _ = split_options(recs[0].prompt)[0], *pe[0].prompt.split("My answer: ")
    assert not options_are_statements(recs) and pe[0].prompt.startswith(f'{PERSONA_QUESTION}\n"{stem}\nMy answer: ')
    hal = load_contrasts("caa:hallucination", 40)
    assert options_are_statements(hal) and "My answer:" not in to_persona(hal)[0][0].prompt
    assert split_options(hal[0].prompt)[0] in to_persona(hal, keep_question=True)[0][0].prompt


def test_persona_sets_keep_one_prompt_per_record():
    """The shipped persona rewrites of the five behaviours whose options are answers keep the question (the
    statement is question and answer, in the persona layout), so no two records share a prompt (dropping it left sycophancy with 60 distinct statements in 1,000 records, mostly
    "Agree" / "Disagree", the same text matching on one record and not on the next); hallucination and refusal
    keep CAA's statements as they are."""
    for b in ("coordinate-other-ais", "corrigible-neutral-HHH", "myopic-reward", "survival-instinct", "sycophancy"):
        for part in ("generate", "test"):
            name = f"caa-persona:{b}/{part}"
            recs = load_contrasts(name)
            assert len({c.prompt for c in recs}) == len(recs) > 40, name
            assert registry.catalogue()[name]["question_kept"] is True
            assert all(c.prompt.startswith(PERSONA_QUESTION) and "\nMy answer: " in c.prompt for c in recs)
    for b in ("hallucination", "refusal"):
        assert registry.catalogue()[f"caa-persona:{b}/test"]["question_kept"] is False
        assert load_contrasts(f"caa-persona:{b}", 5)[0].prompt.startswith(PERSONA_QUESTION)


def test_data_command_lists_shows_and_exports(tmp_path, capsys):
    assert main(["data", "list"]) == 0
    out = capsys.readouterr().out
    assert "caa-persona:refusal/test" in out and "lrt:text" in out and "truthfulqa-text" in out
    assert main(["data", "show", "mmlu", "--records", "1"]) == 0
    out = capsys.readouterr().out
    assert "licence" in out and registry.catalogue()["mmlu"]["sha256"] in out
    assert main(["data", "show", "caa-persona:hallucination", "--records", "1"]) == 0   # CAA repeats 18 options
    out = capsys.readouterr().out
    assert "records  1000 (982 distinct prompts" in out and "records  50 (" not in out
    assert main(["data", "show", "caa:sycophancy", "--records", "1"]) == 0
    out = capsys.readouterr().out
    assert "distinct" not in out
    first = load_contrasts("caa:sycophancy", 1)[0].prompt      # a long prompt: its start and its end, clipped openly
    assert repr(first[:100]) in out and repr(first[-160:]) in out and "characters] …" in out
    assert main(["data", "export", "caa:refusal", str(tmp_path / "e")]) == 0
    exported = json.loads((tmp_path / "e" / "caa-refusal-test.json").read_text())
    assert len(exported) == 50 and (tmp_path / "e" / "caa-refusal-test.source.json").is_file()
    # a user's own copy of a shipped file belongs to the same family (what a leave-out excludes)
    assert registry.family_of(tmp_path / "e" / "caa-refusal-generate.json") == "caa:refusal"
    assert main(["data", "show", "caa:nope"]) == 2
    assert capsys.readouterr().err.startswith("lrt: error: no data set named 'caa:nope'")


def test_unknown_names_and_missing_files_fail_before_any_model_loads(tmp_path, capsys):
    for args, flag in ((["steer", "--model", "zoo-xs", "--layer", "0", "--contrast", "caa:nope"], "--contrast"),
                       (["fit-map", "--corpus", "lrt:nope"], "--corpus"),
                       (["evaluate", "--model", "zoo-m", "--native", "x", "--test", str(tmp_path / "no.json")], "--test"),
                       (["evaluate", "--model", "zoo-m", "--native", "x", "--mmlu", "mmlux"], None)):
        assert main(args + ["--out", str(tmp_path / "o")]) == 2
        err = capsys.readouterr().err
        assert err.count("\n") == 1 and err.startswith("lrt: error:") and (flag is None or flag in err), err
        assert not (tmp_path / "o").exists()


@pytest.fixture()
def hf_cache(tmp_path, monkeypatch):
    """A Hugging Face datasets cache holding 'lrt-test/tiny-ab', built here as `load_dataset` leaves it after a
    download, and the library switched to offline mode."""
    datasets = pytest.importorskip("datasets")
    cache = tmp_path / "hf"
    src = tmp_path / "train.jsonl"
    with open(src, "w") as f:
        for i in range(6):
            f.write(json.dumps({"question": f"Is {i} even?\n\nChoices:\n (A) yes\n (B) no",
                                "answer_matching_behavior": "(A)" if i % 2 == 0 else "(B)",
                                "answer_not_matching_behavior": "(B)" if i % 2 == 0 else "(A)",
                                "text": f"document number {i} " * 20, "id": f"d{i}"}) + "\n")
    datasets.load_dataset("json", data_files={"train": str(src)}, cache_dir=str(cache))
    built = glob.glob(str(cache / "json" / "*" / "*" / "*"))[0]
    dst = cache / "lrt-test___tiny-ab" / "default" / "0.0.0" / os.path.basename(built)
    shutil.copytree(built, dst)
    for f in dst.glob("json-*.arrow"):
        f.rename(f.with_name(f.name.replace("json-", "tiny-ab-")))
    info = json.loads((dst / "dataset_info.json").read_text())
    info.update(builder_name="tiny-ab", dataset_name="tiny-ab", config_name="default")
    (dst / "dataset_info.json").write_text(json.dumps(info))
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", str(cache))
    monkeypatch.setattr(datasets.config, "HF_HUB_OFFLINE", True)
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_DATASETS_OFFLINE", "1")
    return cache


def test_hugging_face_data_sets_by_name_from_the_local_cache(hf_cache):
    pairs = load_contrasts("hf:lrt-test/tiny-ab")
    assert len(pairs) == 6 and pairs[1].positive == "(B)" and pairs[0].prompt.startswith("Is 0 even?")
    docs = list(iter_documents("hf:lrt-test/tiny-ab@train"))
    assert [d["doc_id"] for d in docs] == [f"d{i}" for i in range(6)]
    with pytest.raises(Exception, match="could not open the Hugging Face data set"):
        load_contrasts("hf:lrt-test/absent")


def test_gzipped_contrast_files_read_like_plain_ones(tmp_path):
    plain = registry.resolve("caa:myopic-reward", "test")
    with gzip.open(plain, "rt", encoding="utf-8") as f:
        text = f.read()
    (tmp_path / "t.json").write_text(text)
    assert [c.prompt for c in load_contrasts(tmp_path / "t.json")] == [c.prompt for c in load_contrasts(plain)]
