"""End to end on tiny models: harvest, fit, artifacts, tokenizer check."""

import json
import warnings

import pytest
import torch

from lrt.errors import ArtifactError, CorpusError, DimensionMismatchError, NonFiniteActivationError, \
    TokenizerMismatchError
from lrt.maps.config import FitConfig
from lrt.maps.fit import fit_map
from lrt.harvest.config import HarvestConfig
from lrt.harvest.paired import harvest_pairs, pack_sequences
from lrt.maps import AffineMap
from lrt.models import load_model
from lrt.steering.transfer import transfer_tensor
from lrt.models.tokenizer_check import check_tokenizers

from conftest import make_docs, train_tiny_tokenizer, write_jsonl


def test_packing_excludes_pad_and_first_position(tiny_pair, tiny_corpus):
    src = load_model(tiny_pair[0])
    cfg = HarvestConfig(corpus=str(tiny_corpus), tokens=3000, context=64, batch_size=4, progress=False)
    batches = list(pack_sequences(cfg, src.tokenizer))
    assert {held for *_, held in batches} == {False, True}
    total = sum(int(m.sum()) for _, m, _ in batches)
    assert 3000 <= total < 3000 + 2 * 4 * 64   # at most one batch over, plus the other split's pending
    pairs = list(harvest_pairs(src, src, [1], [1], cfg))
    rows = sum(len(b.source[1]) for b in pairs)
    n_seqs = sum(len(ids) for ids, _, _ in batches)
    assert rows == total - n_seqs        # position 0 of every sequence left out
    for b in pairs:                      # same model, same layer: rows are identical
        torch.testing.assert_close(b.source[1], b.target[1])


def test_fit_on_identical_models_is_perfect(tiny_pair, tiny_corpus):
    src = load_model(tiny_pair[0])
    hc = HarvestConfig(corpus=str(tiny_corpus), tokens=4000, context=64, batch_size=4, progress=False)
    m = fit_map(src, src, 1, 1, hc, FitConfig(ridge=0.0, max_norm_ratio=None))
    assert m.meta["metrics"]["heldout"]["r2"] > 0.999
    assert m.meta["metrics"]["heldout"]["cosine_mean"] > 0.999
    # the shuffled control gets nothing on held-out rows
    assert m.meta["metrics"]["shuffled_control_heldout"]["r2"] < 0.1


def test_fit_between_sizes_and_round_trip(tiny_pair, tiny_corpus, tmp_path):
    src, tgt = load_model(tiny_pair[0]), load_model(tiny_pair[1])
    hc = HarvestConfig(corpus=str(tiny_corpus), tokens=4000, context=64, batch_size=4, progress=False)
    m = fit_map(src, tgt, 1, 2, hc)
    assert m.A.shape == (48, 32) and m.p.shape == (48,)
    meta = m.meta
    assert meta["tokens"]["train_rows"] > 0 and meta["tokens"]["heldout_rows"] > 0
    assert set(meta["norms"]) == {"source", "target"} and meta["norms"]["target"]["median"] > 0
    m.save(tmp_path / "map")
    back = AffineMap.load(tmp_path / "map")
    assert torch.equal(back.A, m.A) and torch.equal(back.p, m.p)
    assert back.meta["metrics"] == json.loads(json.dumps(m.meta["metrics"]))
    v = torch.randn(32)
    torch.testing.assert_close(transfer_tensor(v, back, "point") - transfer_tensor(v, back, "direction"), back.p)
    with pytest.raises(DimensionMismatchError, match="width 32"):
        back.transform(torch.randn(3, 48))
    # tampering with the tensor file is detected
    f = tmp_path / "map" / "map.safetensors"
    data = bytearray(f.read_bytes())
    data[-1] ^= 0x01
    f.write_bytes(bytes(data))
    with pytest.raises(ArtifactError, match="sha256"):
        AffineMap.load(tmp_path / "map")


def test_massive_activation_filter(tiny_pair, tiny_corpus):
    src = load_model(tiny_pair[0])
    hc = HarvestConfig(corpus=str(tiny_corpus), tokens=3000, context=64, batch_size=4, progress=False,
                       keep_first_token=True)   # position 0 is where a sink would be
    m = fit_map(src, src, 0, 0, hc, FitConfig(max_norm_ratio=1.05))
    assert m.meta["tokens"]["excluded_massive"] > 0


def test_tokenizer_mismatch(tiny_tokenizer):
    other = train_tiny_tokenizer(vocab_size=300, seed_text="zebra quantum xylophone " * 50)
    with pytest.raises(TokenizerMismatchError, match=r"vocabulary sizes differ \(source 320, target 300\)"):
        check_tokenizers(tiny_tokenizer, other)
    check_tokenizers(tiny_tokenizer, tiny_tokenizer)


def test_corpus_errors(tmp_path, tiny_pair):
    src = load_model(tiny_pair[0])
    empty = tmp_path / "empty.jsonl"
    empty.write_text("")
    notext = write_jsonl(tmp_path / "notext.jsonl", [{"body": "hello"}])
    for path, msg in ((empty, "no non-empty 'text'"), (notext, "no 'text' field")):
        cfg = HarvestConfig(corpus=str(path), tokens=100, progress=False)
        with pytest.raises(CorpusError, match=msg):
            list(pack_sequences(cfg, src.tokenizer))
    small = write_jsonl(tmp_path / "small.jsonl", make_docs(3))
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        list(pack_sequences(HarvestConfig(corpus=str(small), tokens=10**6, progress=False), src.tokenizer))
    assert any("fewer than the 1,000,000 asked for" in str(x.message) for x in w)


def test_non_finite_activations(tiny_pair, tiny_corpus):
    src = load_model(tiny_pair[0])
    with torch.no_grad():
        src.blocks[1].mlp.down_proj.weight.fill_(float("nan"))
    cfg = HarvestConfig(corpus=str(tiny_corpus), tokens=500, context=64, batch_size=2, progress=False)
    with pytest.raises(NonFiniteActivationError, match="layer 1"):
        list(harvest_pairs(src, src, [1], [0], cfg))


def test_contrast_shrunk_map_recovers_a_relation_and_runs_on_caa(tmp_path):
    """shrunk_fit with a small λ recovers an exact relation of differences; λ → ∞ returns the prior; the CLI refits
    a family map on CAA differences of two behaviours and records λ and its leave-one-out table."""
    import json

    import torch

    from lrt.cli import main
    from lrt.maps.affine import AffineMap
    from lrt.maps.contrast import choose_lambda, shrunk_fit

    g = torch.Generator().manual_seed(0)
    M = torch.randn(10, 6, generator=g)
    sets = {}
    for name in "abc":
        dx = torch.randn(40, 6, generator=g) + torch.randn(6, generator=g)
        sets[name] = (dx, dx @ M.T)
    prior = torch.zeros(10, 6)
    X, Y = torch.cat([v[0] for v in sets.values()]), torch.cat([v[1] for v in sets.values()])
    torch.testing.assert_close(shrunk_fit(X, Y, 1e-8, prior), M, rtol=1e-4, atol=1e-4)
    torch.testing.assert_close(shrunk_fit(X, Y, 1e9, prior), prior, rtol=0, atol=1e-6)
    lam, table = choose_lambda(sets, prior)
    assert lam == min(table) and table[lam] > 0.999
    files = ["caa:refusal", "caa:sycophancy"]                 # the shipped sets, by name
    out = tmp_path / "m"
    args = ["fit-map", "--source", "zoo-xs", "--target", "zoo-s", "--tokens", "4000", "--context", "64",
            "--contrast-pairs", "6", "--out", str(out), "-q"]
    assert main(args + ["--contrast-sets", files[0]]) == 2 and not out.exists()
    assert main(args + sum([["--contrast-sets", f] for f in files], [])) == 0
    meta = json.loads((out / "map.json").read_text())
    assert meta["method"] == "contrast-shrunk" and meta["contrast"]["lambda"] in (1e-3, 1e-2, 1e-1, 1.0, 10.0, 100.0)
    assert len(meta["contrast"]["leave_one_family_out_cos"]) == 6 and AffineMap.load(out).A.shape == (192, 128)


def test_robust_r2_leaves_out_a_massive_source_token():
    """The R² under the q99 norm is robust to massive activations in *either* stream: one held-out row whose source
    state is 100× the usual norm (its target state ordinary) sends A·x far off and the all-row R² below zero; the
    robust R² leaves it out and recovers the exact relation."""
    from lrt.maps.metrics import metrics_from_rows

    g = torch.Generator().manual_seed(0)
    A, p = torch.randn(6, 8, generator=g), torch.randn(6, generator=g)
    x = torch.randn(400, 8, generator=g)
    y = x @ A.T + p
    x[7] *= 100.0                                  # a massive source token; y[7] stays ordinary
    got = metrics_from_rows(A, p, x, y)
    pred = x.double() @ A.double().T + p.double()
    all_r2 = 1 - ((y - pred) ** 2).sum() / ((y - y.mean(0)) ** 2).sum()
    assert all_r2 < 0 and got["r2_below_q99"] == pytest.approx(1.0, abs=1e-6)
