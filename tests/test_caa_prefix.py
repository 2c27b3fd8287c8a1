"""CAA on shared prefixes (each prompt once, the two answers from its KV cache) = two full sequences per pair."""

import warnings

import pytest
import torch

from lrt.data.contrasts import Contrast, contrast_items, load_contrasts
from lrt.harvest.capture import capture_batches, keep_mask
from lrt.harvest.prefix import continuation_states, length_groups
from lrt.models import load_model
from lrt.stats.samples import NormTracker
from lrt.steering.vectors import contrast_vector

from conftest import ARCHS, tiny_model_dir


def plain_caa(lm, items, layer, batch_size=16):
    """The oracle: prompt + positive and prompt + negative as full sequences; the norms of every kept position."""
    seqs = [it.ids + it.positive[:1] for it in items] + [it.ids + it.negative[:1] for it in items]
    rows, tracker = [], NormTracker()
    for hs, mask in capture_batches(lm, seqs, [layer], batch_size):
        h = hs[layer]
        rows.append(h[torch.arange(len(h)), mask.sum(1) - 1])
        tracker.update(h[keep_mask(mask)].norm(dim=-1))
    rows = torch.cat(rows)
    return (rows[:len(items)] - rows[len(items):]).mean(0), tracker


def assert_same(v, ref, tracker):
    torch.testing.assert_close(v.vector, ref, atol=1e-5, rtol=0)
    cos = torch.nn.functional.cosine_similarity(v.vector.double(), ref.double(), dim=0)
    assert cos > 1 - 1e-6
    assert v.meta["layer_median_norm"] == pytest.approx(tracker.median(), rel=1e-6, abs=1e-6)


def ab_items(tok, n=10):
    """A/B questions of a few lengths (several of each length, and some alone)."""
    data = [Contrast(f"Question {i}: is the {'plot ' * (i % 4)}good?\n(A) yes\n(B) no", "(A)", "(B)")
            for i in range(n)]
    return contrast_items(tok, data)


@pytest.mark.parametrize("arch", ARCHS)
def test_shared_prefix_equals_two_full_sequences_on_every_architecture(arch, tiny_tokenizer, tmp_path):
    lm = load_model(tiny_model_dir(tmp_path, arch, tiny_tokenizer, width=32, layers=3))
    its = ab_items(lm.tokenizer)
    assert len({len(it.ids) for it in its}) > 1
    groups = length_groups([len(it.ids) for it in its], 3, pad=True)     # batches of mixed lengths: padded
    assert any(len({len(its[i].ids) for i in g}) > 1 for g in groups)
    with warnings.catch_warnings():
        warnings.simplefilter("error")          # no fallback to full sequences
        for layer in (0, 2):
            ref, tracker = plain_caa(lm, its, layer)
            got = continuation_states(lm, layer, [it.ids for it in its],
                                      [it.positive[:1] + it.negative[:1] for it in its], batch_size=3)
            assert got.shared
            v = contrast_vector(lm, its, layer, batch_size=3)
            assert_same(v, ref, tracker)
            assert_same(contrast_vector(lm, its, layer, batch_size=3, share_prefix=False), ref, tracker)
            same = continuation_states(lm, layer, [it.ids for it in its],        # one length a batch: no padding
                                       [it.positive[:1] + it.negative[:1] for it in its], batch_size=3, pad=False)
            torch.testing.assert_close(same.states, got.states, atol=1e-5, rtol=0)


def test_norm_multiset_is_that_of_the_full_sequences(tiny_pair):
    lm = load_model(tiny_pair[0])
    its = ab_items(lm.tokenizer, 7)
    got = continuation_states(lm, 1, [it.ids for it in its], [it.positive[:1] + it.negative[:1] for it in its])
    _, tracker = plain_caa(lm, its, 1)
    mine = torch.cat([n for per_k in got.kept_norms for n in per_k])
    assert len(mine) == tracker.n == 2 * sum(len(it.ids) for it in its)     # (P − 1) prompt + 1 answer, twice
    torch.testing.assert_close(mine.sort().values, tracker.sample.sort().values, atol=1e-5, rtol=1e-6)


def test_growing_the_pairs_runs_each_pair_once_and_gives_the_same_vector(tiny_pair, monkeypatch, capsys):
    """contrast_states(before=): 4 pairs, then 10 — only the 6 new prompts run (the progress bar counts those), and
    the vector, its median norm and split-half cosine are those of the 10 pairs computed at once (each pair's
    states are its own)."""
    from lrt.harvest import prefix
    from lrt.steering.vectors import contrast_states

    lm = load_model(tiny_pair[0])
    its = ab_items(lm.tokenizer, 10)
    ran, real = [], prefix.continuation_states
    monkeypatch.setattr(prefix, "continuation_states", lambda lm_, li, prompts, *a, **k: (
        ran.append(len(prompts)), real(lm_, li, prompts, *a, **k))[1])
    first = contrast_states(lm, its[:4], 1)
    assert "vector pairs" not in capsys.readouterr().err                # no bar unless named
    both = contrast_states(lm, its, 1, before=first, desc="vector pairs")
    err = capsys.readouterr().err
    assert "vector pairs:" in err and "0/6 [" in err                    # the 6 new prompts, not the 10
    assert ran == [4, 6] and contrast_states(lm, its, 1, before=both) is both
    grown = contrast_vector(lm, its, 1, states=both)
    fresh = contrast_vector(lm, its, 1)
    torch.testing.assert_close(grown.vector, fresh.vector, atol=1e-5, rtol=0)
    assert grown.meta["layer_median_norm"] == pytest.approx(fresh.meta["layer_median_norm"], rel=1e-6)
    with pytest.raises(ValueError):
        contrast_vector(lm, its[:5], 1, states=both)


def test_embed_layer_and_groups(tiny_pair):
    lm = load_model(tiny_pair[0])
    its = ab_items(lm.tokenizer, 5)
    ref, tracker = plain_caa(lm, its, -1)
    assert_same(contrast_vector(lm, its, "embed"), ref, tracker)
    groups = length_groups([3, 5, 3, 3, 5, 4], 2)
    assert sorted(i for g in groups for i in g) == list(range(6))
    assert all(len(g) <= 2 and len({[3, 5, 3, 3, 5, 4][i] for i in g}) == 1 for g in groups)


def test_fallback_when_the_cache_path_does_not_reproduce(tiny_pair, monkeypatch):
    from lrt.harvest import prefix

    lm = load_model(tiny_pair[0])
    its = ab_items(lm.tokenizer, 6)
    monkeypatch.setattr(prefix, "_matches", lambda *a: False)
    with pytest.warns(UserWarning, match="computing every prompt"):
        v = contrast_vector(lm, its, 1)
    ref, tracker = plain_caa(lm, its, 1)
    assert torch.equal(v.vector, ref) and v.meta["layer_median_norm"] == tracker.median()


def test_zoo_xs_with_real_caa_items():
    lm = load_model("zoo-xs")
    its = contrast_items(lm.tokenizer, load_contrasts("caa:refusal", 40))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for layer in range(lm.n_layers):
            ref, tracker = plain_caa(lm, its, layer)
            for method in ("mean", "pca"):
                v = contrast_vector(lm, its, layer, method, balance=False)
                if method == "mean":
                    assert_same(v, ref, tracker)
                    # balanced: the mean of the A-matching pairs' mean and the B-matching pairs' mean
                    a = [i for i, it in enumerate(its) if it.positive == its[0].positive]
                    b = [i for i in range(len(its)) if i not in a]
                    assert 3 <= len(a) and 3 <= len(b) and len(a) != len(b)
                    only = [plain_caa(lm, [its[i] for i in g], layer)[0] for g in (a, b)]
                    assert_same(contrast_vector(lm, its, layer), (only[0] + only[1]) / 2, tracker)
                else:
                    assert_same(v, contrast_vector(lm, its, layer, method, share_prefix=False, balance=False).vector,
                                tracker)
