"""Maps across tokenizers: positions where both tokenizers end a token at the same character are recovered exactly,
and an exact affine relation between two models of different tokenizers is recovered from those positions."""

import re

import pytest
import torch

from conftest import tiny_config, train_tiny_tokenizer, write_jsonl
from lrt.harvest.aligned import aligned_positions, token_ends
from lrt.models.load import load_model

TEXTS = ["the movie was really quite good, but the plot... not so much!",
         "A woman walks into the city at night; people love it (and hate it).",
         "numbers 3.14 and 2026, odd spacing  here,\ttabs and\nnew lines."]


@pytest.fixture(scope="module")
def tokenizers():
    """The zoo's 8k byte-level BPE (trained on natural text) and a GPT-2-style byte-level BPE of 320 tokens trained
    here on other text: two real tokenizer types that cut the same text differently."""
    from transformers import AutoTokenizer

    from lrt.zoo import path

    return AutoTokenizer.from_pretrained(str(path("zoo-xs"))), train_tiny_tokenizer(seed_text="odd spacing tabs")


def boundaries(tok, text):
    """The oracle, without offsets: the character count of the decoded text after each token (-1: no new text)."""
    ids = tok(text, add_special_tokens=True)["input_ids"]
    out, prev = [], 0
    for i in range(len(ids)):
        n = len(tok.decode(ids[:i + 1], skip_special_tokens=True))
        out.append(n if n > prev else -1)
        prev = max(prev, n)
    return ids, out


@pytest.mark.parametrize("text", TEXTS)
def test_aligned_positions_are_exactly_the_shared_character_boundaries(tokenizers, text):
    za, zb = tokenizers
    ia, ea = token_ends(za, text)
    ib, eb = token_ends(zb, text)
    assert ia != ib                                              # the two tokenizers really differ on this text
    pa, pb = aligned_positions(ea, eb)
    _, oa = boundaries(za, text)
    _, ob = boundaries(zb, text)
    want = sorted((set(x for x in oa[1:] if x > 0) & set(x for x in ob[1:] if x > 0)))
    got = [ea[i] for i in pa]
    assert got == [eb[j] for j in pb] == want                    # every shared boundary, in order, nothing else
    for i, j in zip(pa, pb):                                     # both models have read exactly the same text
        assert za.decode(ia[:i + 1], skip_special_tokens=True) == zb.decode(ib[:j + 1], skip_special_tokens=True) \
            == text[:ea[i]]
    assert 0.3 < len(pa) / len(ia) <= 1.0


def _embedding_model(tmp, tok, table: torch.Tensor, name: str):
    """A tiny Llama whose token embedding is ``table[last character of the token]``: its 'embed' state at a position
    is a function of the last character read there."""
    from transformers import AutoModelForCausalLM

    d = table.shape[1]
    model = AutoModelForCausalLM.from_config(tiny_config("llama", len(tok), width=d, layers=1))
    vocab = tok.convert_ids_to_tokens(list(range(len(tok))))
    with torch.no_grad():
        emb = model.get_input_embeddings().weight
        for i, t in enumerate(vocab):
            text = tok.convert_tokens_to_string([t])
            emb[i] = table[ord(text[-1]) % table.shape[0]] if text else 0.0
    out = tmp / name
    model.save_pretrained(out)
    tok.save_pretrained(out)
    return out


def test_an_exact_affine_relation_is_recovered_across_two_tokenizers(tokenizers, tmp_path):
    """Source state = E[last char], target state = A·E[last char] + p: at aligned positions (the same last
    character) the relation is exact, so the fitted map recovers A and p and its held-out R² is 1; a token-by-token
    harvest is refused for these two tokenizers."""
    from lrt.errors import TokenizerMismatchError
    from lrt.harvest.config import HarvestConfig
    from lrt.maps.config import FitConfig
    from lrt.maps.fit import fit_map

    g = torch.Generator().manual_seed(0)
    E = torch.randn(128, 16, generator=g)
    A, p = torch.randn(24, 16, generator=g) / 4, torch.randn(24, generator=g)
    za, zb = tokenizers
    src = load_model(str(_embedding_model(tmp_path, za, E, "src")))
    tgt = load_model(str(_embedding_model(tmp_path, zb, E @ A.T + p, "tgt")))
    rng = __import__("random").Random(3)        # words ending in many different characters: E's rows all used
    chars = "abcdefghijklmnopqrstuvwxyz0123456789.,;!?"
    docs = [{"doc_id": f"d{i}", "source": "synthetic", "text": " ".join(
        "".join(rng.choice(chars) for _ in range(rng.randint(1, 5))) for _ in range(60))} for i in range(150)]
    corpus = write_jsonl(tmp_path / "c.jsonl", docs)
    cfg = HarvestConfig(corpus=str(corpus), tokens=6000, context=64, batch_size=4, progress=False, align="chars")
    m = fit_map(src, tgt, "embed", "embed", cfg, FitConfig(ridge=1e-9, shuffled_control=True))
    torch.testing.assert_close(m.A, A, atol=2e-3, rtol=0)
    torch.testing.assert_close(m.p, p, atol=2e-3, rtol=0)
    _stitch_exact(src, tgt, m, cfg, corpus)
    held = m.meta["metrics"]["heldout"]
    assert held["r2"] > 0.9999 and m.meta["metrics"]["shuffled_control_heldout"]["r2"] < 0.2
    al = m.meta["alignment"]
    assert m.meta["tokenizers"]["paired_by"] == "chars" and al["aligned_rows"] == \
        m.meta["tokens"]["train_rows"] + m.meta["tokens"]["heldout_rows"] + m.meta["tokens"]["excluded_massive"]
    assert 0.3 < al["aligned_fraction_of_source_tokens"]["train"]["synthetic"] <= 1
    with pytest.raises(TokenizerMismatchError, match="--align chars"):
        fit_map(src, tgt, "embed", "embed", HarvestConfig(corpus=str(corpus), tokens=2000, progress=False))


def _stitch_exact(src, tgt, up, cfg, corpus):
    """The stitched loss across tokenizers, at aligned positions: with the exact map (and its exact inverse) the
    replaced states equal the recipient's own there, so stitched CE = own CE and KL ≈ 0 both ways, while a mean
    ablation of the same positions costs; the result says how positions were paired and how many were replaced."""
    from dataclasses import replace

    from lrt.evaluate.config import StitchConfig
    from lrt.evaluate.stitch import stitch
    from lrt.maps.config import FitConfig
    from lrt.maps.fit import fit_map

    down = fit_map(tgt, src, "embed", "embed", cfg, FitConfig(ridge=1e-9, shuffled_control=False))
    r = stitch(src, tgt, up, down, replace(StitchConfig(), eval_corpus=str(corpus), eval_tokens=1500, eval_context=64,
                                           progress=False))
    assert r["positions"] == "aligned" and 0.3 < r["replaced_share_of_target_tokens"] < 1 and r["tokens"] > 300
    assert abs(r["relative_increase"]["source→target"]) < 1e-3 and r["kl"]["source→target"] < 1e-4
    assert abs(r["relative_increase"]["target→source"]) < 1e-3 and r["kl"]["target→source"] < 1e-4
    assert r["kl"]["target, mean ablation"] > 100 * max(r["kl"]["source→target"], 1e-6)
    assert not r["round_trips"] and "source→target→source" not in r["ce"]
    broken = replace(up, A=up.A[torch.randperm(up.A.shape[0], generator=torch.Generator().manual_seed(0))])
    rb = stitch(src, tgt, broken, None, replace(StitchConfig(), eval_corpus=str(corpus), eval_tokens=1500,
                                                eval_context=64, progress=False))
    assert rb["kl"]["source→target"] > 0.2 * rb["kl"]["target, mean ablation"] > 0  # replacement really happens


GOLDEN = {"norm_A": 28.501973555193057, "norm_p": 9.912562790890513,
          "A[0,:4]": (0.053722, 0.02523, -0.136903, -0.236093), "p[:4]": (1.532034, -0.955476, -0.82326, -0.758769)}
"""The map below as the code before the aligned harvest computed it (commit 2e77b4f, torch 2.13.0+cpu, one
thread). Its bytes depend on the CPU's float kernels: sha256 of A and p 674a90ae… on the machine it was first
recorded on, cc84be8e… on an AMD EPYC — the same on each as the code of 2e77b4f there. So the values are
compared — the norms at a relative 1e-5, the first entries at 1e-4 —: far finer than any change to which positions are paired or how they are summed."""


def test_the_one_tokenizer_path_gives_the_same_map_as_before_alignment():
    import lrt.zoo
    from lrt.harvest.config import HarvestConfig
    from lrt.maps.fit import fit_map

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        m = fit_map(load_model("zoo-xs"), load_model("zoo-s"), 0, 1,
                    HarvestConfig(corpus=str(lrt.zoo.heldout_text()), tokens=3000, context=64, progress=False))
    finally:
        torch.set_num_threads(threads)
    assert m.meta["tokenizers"]["paired_by"] == "tokens" and m.meta["alignment"] is None
    A, p = m.A.double(), m.p.double()
    assert float(A.norm()) == pytest.approx(GOLDEN["norm_A"], rel=1e-5)
    assert float(p.norm()) == pytest.approx(GOLDEN["norm_p"], rel=1e-5)
    assert A[0, :4].tolist() == pytest.approx(GOLDEN["A[0,:4]"], rel=1e-4, abs=1e-6)
    assert p[:4].tolist() == pytest.approx(GOLDEN["p[:4]"], rel=1e-4, abs=1e-6)


def test_fit_map_and_the_study_across_tokenizers(tmp_path, tiny_tokenizer, capsys):
    """The CLI: a tiny model with its own tokenizer → zoo-xs refuses token by token (pointing at --align chars),
    fits with --align chars (map.json records the pairing and the aligned share), and runs the study (vectors on
    each model in its own tokens, the map's text part aligned)."""
    import json

    from conftest import tiny_model_dir
    from lrt.cli import main

    small = str(tiny_model_dir(tmp_path, "llama", tiny_tokenizer, width=32, layers=2))
    args = ["fit-map", "--source", small, "--target", "zoo-xs", "--tokens", "3000", "--context", "64",
            "--no-progress", "--out", str(tmp_path / "m")]
    assert main(args) == 2 and "--align chars" in capsys.readouterr().err
    assert main(args + ["--align", "chars"]) == 0
    assert re.search(r"positions paired +tokens ending at the same character \(two tokenizers\): \d",
                     capsys.readouterr().out)
    meta = json.loads((tmp_path / "m" / "map.json").read_text())
    assert meta["tokenizers"]["paired_by"] == "chars" and meta["tokenizers"]["source"] != meta["tokenizers"]["target"]
    assert meta["alignment"]["aligned_rows"] > 500       # word ends mostly: the tiny tokenizer cuts words finely
    layer = str(meta["source_layer"])
    for model, ok in ((small, 0), ("zoo-s", 2)):            # a vector of another model is refused by transfer
        out = tmp_path / f"v-{ok}"
        assert main(["steer", "--model", model, "--layer", layer, "--max-pairs", "10", "--no-progress",
                     "--out", str(out)]) == 0
        assert main(["transfer", "--vector", str(out), "--map", str(tmp_path / "m"), "--out", str(out) + "-t"]) == ok
    got = capsys.readouterr()
    assert "the map starts from" in got.err
    assert "split-half cos (pairs agree" in got.out and "split-half cos of the vector on the source" in got.out
    assert main(["study", "--source", small, "--target", "zoo-xs", "--align", "chars", "--behaviours", "caa:refusal",
                 "--pairs", "8", "--test-items", "6", "--search-items", "4", "--n-random", "4", "--search-random", "3",
                 "--contrast-sets", "caa:sycophancy", "--contrast-sets", "caa:myopic-reward", "--contrast-pairs", "6",
                 "--tokens", "2000", "--no-layer-search", "--bootstrap", "50", "--no-progress",
                 "--out", str(tmp_path / "st")]) == 0
    res = json.loads((tmp_path / "st" / "results.json").read_text())
    rec = res["behaviours"]["caa:refusal"]
    assert rec["items"]["test"] == 6 and "transferred_direction" in rec["verdict"]["vectors"]
    assert -1 <= rec["signals"]["split_half_cos"] <= 1
    # the layer sweep across tokenizers: results and summary say how positions were paired
    capsys.readouterr()
    assert main(["sweep-layers", "--source", small, "--target", "zoo-xs", "--align", "chars", "--tokens", "2000",
                 "--context", "64", "--stitch-best", "0", "--no-progress", "--out", str(tmp_path / "sw")]) == 0
    sw = json.loads((tmp_path / "sw" / "results.json").read_text())
    assert sw["paired_by"] == "chars" and sw["alignment"]["aligned_rows"] > 300
    assert re.search(r"positions paired tokens ending at the same character \(two tokenizers\): \d",
                     capsys.readouterr().out)
    # a probe through the aligned map: both models pool the same characters of each document
    assert main(["probe", "compare", "--up", str(tmp_path / "m"), "--per-class", "20", "--max-tokens", "48",
                 "--out", str(tmp_path / "pr")]) == 0
    pr = json.loads((tmp_path / "pr" / "results.json").read_text())
    assert pr["tokenizers"] == "two" and {r["probe"] for r in pr["rows"]} >= {"transferred up (weights through A↑⁺)"}


def test_same_span_cuts_the_documents_end_at_a_token_boundary(tiny_tokenizer):
    from lrt.models.load import load_model
    from lrt.pipelines.probes import same_span

    text = "The film was long, and the ending felt rushed; still, the actors carried it with real warmth."
    for tok in (tiny_tokenizer, load_model("zoo-xs").tokenizer):
        n = len(tok(text, add_special_tokens=False)["input_ids"])
        assert same_span(tok, text, n + 3) == text
        span = same_span(tok, text, 6)
        assert text.endswith(span) and len(span) < len(text)
        assert abs(len(tok(span, add_special_tokens=False)["input_ids"]) - 6) <= 1
