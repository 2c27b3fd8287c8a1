"""Steering on tiny models: exact application, position modes under generate(), batched grid = loop, metrics."""

import json
import warnings

import pytest
import torch

from lrt.errors import ConfigError, DatasetError, DimensionMismatchError
from lrt.maps.config import FitConfig
from lrt.maps.fit import fit_map
from lrt.harvest.config import HarvestConfig
from lrt.harvest.capture import run_with_capture
from lrt.models import load_model
from lrt.steering.apply import scaled, steering
from lrt.data.contrasts import Contrast, contrast_items, load_contrasts, word_items
from lrt.evaluate.config import EvalConfig
from lrt.evaluate.steering import evaluate_vectors
from lrt.evaluate.propensity import propensity_grid
from propensity_oracle import propensity_loop
from lrt.steering.gguf import write_control_vector
from lrt.steering.transfer import transfer_vector
from lrt.steering.vectors import SteeringVector, contrast_vector

from conftest import ARCHS, tiny_model_dir


@pytest.fixture(scope="module")
def lm(tiny_pair):
    return load_model(tiny_pair[0])


@pytest.fixture(scope="module")
def items(lm):
    prompts = ["the movie was", "a film is really", "the book and the plot", "people love the music",
               "the day was long but", "a man and a woman", "time is not", "the city at night was"]
    return word_items(lm.tokenizer, prompts, [" good", " great", " love"], [" bad", " awful", " hate"])


def test_add_ablate_clamp_exact(lm):
    ids = torch.randint(1, 300, (2, 9))
    base = run_with_capture(lm, [1], ids)[1]
    delta = torch.randn(32)
    with steering(lm, 1, delta):
        got = run_with_capture(lm, [1], ids)[1]
    torch.testing.assert_close(got, base + delta)
    u = delta / delta.norm()
    with steering(lm, 1, delta, mode="ablate"):
        got = run_with_capture(lm, [1], ids)[1]
    assert (got @ u).abs().max() < 1e-4
    with steering(lm, 1, -2.5 * u, mode="clamp"):
        got = run_with_capture(lm, [1], ids)[1]
    torch.testing.assert_close(got @ u, torch.full((2, 9), -2.5), atol=1e-4, rtol=0)
    per_row = torch.stack([delta, -delta])          # one delta per batch row
    with steering(lm, 1, per_row):
        got = run_with_capture(lm, [1], ids)[1]
    torch.testing.assert_close(got, base + per_row[:, None, :])
    assert not lm.blocks[1]._forward_hooks


def test_position_modes_under_generate(lm):
    ids = torch.randint(1, 300, (1, 6))
    delta = torch.randn(32) * 50

    def first_scores(where):
        with torch.no_grad(), steering(lm, 0, delta, where=where):
            out = lm.model.generate(ids, max_new_tokens=3, do_sample=False, output_scores=True,
                                    return_dict_in_generate=True, pad_token_id=0)
        return out.scores

    with torch.no_grad():
        plain = lm.model.generate(ids, max_new_tokens=3, do_sample=False, output_scores=True,
                                  return_dict_in_generate=True, pad_token_id=0).scores
    gen = first_scores("generated")
    torch.testing.assert_close(gen[0], plain[0])       # the prompt pass is not steered
    assert not torch.allclose(gen[1], plain[1], atol=1e-3)  # the new token is (KV cache path)
    after = first_scores("after_prompt")
    assert not torch.allclose(after[0], plain[0], atol=1e-3)  # the last prompt token is steered
    with pytest.raises(ConfigError):
        with steering(lm, 0, delta, where="middle"):
            pass


def test_batched_grid_equals_loop(lm, items):
    dirs = torch.nn.functional.normalize(torch.randn(3, 32), dim=-1)
    alphas = [-0.5, 0.0, 0.5, 1.0]
    grid, _ = propensity_grid(lm, 1, items, dirs, alphas, median_norm=5.0, batch_size=7)
    loop = propensity_loop(lm, 1, items, dirs, alphas, median_norm=5.0, batch_size=7)
    torch.testing.assert_close(grid, loop, atol=1e-5, rtol=1e-5)


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_prefix_grid_equals_plain_loop_on_every_architecture(arch, tiny_tokenizer, tmp_path):
    """The grid's shortcut (cached states up to the layer, last-position logits) changes no number."""
    m = load_model(tiny_model_dir(tmp_path, arch, tiny_tokenizer))
    its = word_items(m.tokenizer, ["the movie was", "a film is really good", "time is not", "people love the"],
                     [" good", " great"], [" bad", " awful"])
    dirs = torch.nn.functional.normalize(torch.randn(2, 32), dim=-1)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no fallback to full passes
        for layer in (0, 2):
            grid, _ = propensity_grid(m, layer, its, dirs, [-1.0, 0.0, 1.0], 20.0, batch_size=32)
            loop = propensity_loop(m, layer, its, dirs, [-1.0, 0.0, 1.0], 20.0)
            torch.testing.assert_close(grid, loop, atol=1e-5, rtol=1e-5)


def test_contrast_vector_is_mean_difference_at_answer_token(lm, tmp_path):
    data = [Contrast(f"Question {i}: is the plot good?\n(A) yes\n(B) no", "(A)", "(B)") for i in range(4)]
    its = contrast_items(lm.tokenizer, data)
    assert all(len(it.positive) == 1 and it.positive != it.negative for it in its)
    v = contrast_vector(lm, its, 1)
    manual = torch.stack([
        run_with_capture(lm, [1], torch.tensor([it.ids + it.positive]))[1][0, -1]
        - run_with_capture(lm, [1], torch.tensor([it.ids + it.negative]))[1][0, -1] for it in its]).mean(0)
    torch.testing.assert_close(v.vector, manual, atol=1e-5, rtol=1e-4)
    assert v.meta["layer_median_norm"] > 0
    v.save(tmp_path / "v")
    back = SteeringVector.load(tmp_path / "v")
    assert torch.equal(back.vector, v.vector) and back.layer == 1 and back.n_pairs == 4
    gguf = pytest.importorskip("gguf")
    write_control_vector(v, tmp_path / "v.gguf")
    reader = gguf.GGUFReader(str(tmp_path / "v.gguf"))
    t = {t.name: t for t in reader.tensors}
    assert list(t) == ["direction.2"]      # repeng / llama.cpp count hidden_states: layer 1 -> 2
    torch.testing.assert_close(torch.tensor(t["direction.2"].data).flatten(), v.vector)


def test_transfer_through_identity_map(tiny_pair, tiny_corpus, lm):
    hc = HarvestConfig(corpus=str(tiny_corpus), tokens=4000, context=64, batch_size=4, progress=False)
    m = fit_map(lm, lm, 1, 1, hc, FitConfig(ridge=0.0, max_norm_ratio=None))
    v = SteeringVector(torch.randn(32), lm.name, 1, "mean", 1, {"layer_median_norm": 1.0})
    t = transfer_vector(v, m, "direction")
    assert torch.nn.functional.cosine_similarity(t.vector, v.vector, dim=0) > 0.99
    assert t.meta["origin"] == "transferred-direction"
    other = load_model(tiny_pair[1])
    with pytest.raises(DimensionMismatchError, match="width 32"):
        with steering(other, 1, v.vector):
            pass
    with pytest.raises(DimensionMismatchError):
        v.check_model(other)


def test_a_text_vector_on_a_contrast_map_is_flagged_and_the_cli_warns(tiny_corpus, lm, tmp_path, capsys):
    """A --concept vector (text states) carried by a map refitted on answer-token contrast differences is flagged
    in the transferred vector's metadata and warned about by `lrt transfer`; an answer-token vector on that map, or
    the text vector on the text map, is not."""
    from dataclasses import replace

    from lrt.cli import main

    hc = HarvestConfig(corpus=str(tiny_corpus), tokens=2000, context=64, batch_size=4, progress=False)
    text_map = fit_map(lm, lm, 1, 1, hc, FitConfig(ridge=0.0, max_norm_ratio=None))
    contrast_map = replace(text_map, meta={**text_map.meta, "contrast": {"lambda": 1.0, "sets": ["caa:refusal"]}})
    base = {"layer_median_norm": 1.0}
    concept = SteeringVector(torch.randn(32), lm.name, 1, "mean", 4, {**base, "concept": "sentiment"})
    answer = SteeringVector(torch.randn(32), lm.name, 1, "mean", 4, dict(base))
    assert transfer_vector(concept, contrast_map).meta["text_vector_on_contrast_map"] is True
    assert transfer_vector(concept, text_map).meta["text_vector_on_contrast_map"] is False
    assert transfer_vector(answer, contrast_map).meta["text_vector_on_contrast_map"] is False
    concept.save(tmp_path / "v")
    for name, m in (("text", text_map), ("contrast", contrast_map)):
        m.save(tmp_path / name)
        capsys.readouterr()
        assert main(["transfer", "--vector", str(tmp_path / "v"), "--map", str(tmp_path / name),
                     "--out", str(tmp_path / f"t-{name}")]) == 0
        said = capsys.readouterr().out
        assert ("warning: this is a vector of text states" in said) == (name == "contrast"), said


def test_metrics_on_a_known_direction(lm, items):
    """The direction that raises logit(+) − logit(−) through the unembedding must beat random directions."""
    W = lm.model.get_output_embeddings().weight.detach()
    pos = items[0].positive
    neg = items[0].negative
    native = W[pos].mean(0) - W[neg].mean(0)
    noisy = native + 0.3 * native.norm() * torch.nn.functional.normalize(torch.randn(32), dim=0)
    last = lm.n_layers - 1
    cfg = EvalConfig(alphas=[-1.0, -0.5, 0.0, 0.5, 1.0], n_random=8, bootstrap=200)
    norm = float(run_with_capture(lm, [last], torch.tensor([items[0].ids]))[last].norm(dim=-1).median())
    res = evaluate_vectors(lm, last, items, {"native": native, "transferred_direction": noisy}, norm, cfg,
                           capability_items=items)
    c = res["curves"]
    cap = res["capability"]       # "correct" = the positive words, which the native direction raises
    assert cap["alpha"] == 1.0 and cap["steered"]["native"] == 1.0 >= cap["unsteered"]
    assert c["native"]["slope"] > 0
    assert c["native"]["slope"] > max(res["random"]["slopes"]) + 0.1 * abs(c["native"]["slope"])
    comp = res["comparison"]
    # Raw shifts of random vectors correlate too (a large vector dilutes every item's state alike);
    # the odd part (p(α) − p(−α)) / 2 cancels that: measured 0.98 for the noisy copy, ≈ 0.0 for random.
    assert comp["transferred_direction"]["mean_r_odd"] > 0.8
    assert abs(comp["random_mean"]["mean_r_odd"]) < 0.3
    lo, hi = res["monotonic_range"]
    assert lo <= 0 <= hi
    assert all(c["native"]["ci_low"][a] <= c["native"]["mean"][a] <= c["native"]["ci_high"][a] for a in range(5))


def test_bad_inputs(lm, items, tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps([{"question": "q?", "answer_matching_behavior": "(A)"}]))
    with pytest.raises(DatasetError, match="record 0: missing keys"):
        load_contrasts(bad)
    same = [Contrast("Pick one", "(A)", "(A)")]
    with pytest.raises(DatasetError, match="record 0: positive"):
        contrast_items(lm.tokenizer, same)
    d = {"native": torch.randn(32)}
    with pytest.raises(ConfigError, match="empty"):
        evaluate_vectors(lm, 1, items, d, 1.0, EvalConfig(alphas=[]))
    with pytest.raises(DatasetError, match="at least 2"):
        evaluate_vectors(lm, 1, items[:1], d, 1.0, EvalConfig(alphas=[0.0, 1.0]))


def test_mwe_jsonl_and_plain_jsonl(tmp_path, lm):
    mwe = tmp_path / "mwe.jsonl"
    mwe.write_text("\n".join(json.dumps({"question": f"Is {i} fine?", "answer_matching_behavior": " Yes",
                                         "answer_not_matching_behavior": " No"}) for i in range(3)))
    plain = tmp_path / "plain.jsonl"
    plain.write_text(json.dumps({"prompt": "x", "positive": "good", "negative": "bad"}))
    assert len(load_contrasts(mwe)) == 3 and load_contrasts(plain)[0].positive == "good"
    assert scaled(torch.ones(2), torch.tensor([1.0, 2.0]), 3.0).tolist() == [[3.0, 3.0], [6.0, 6.0]]
