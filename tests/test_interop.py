"""Format compatibility with the real libraries (optional `interop` extra: pip install -e '.[interop]').

An SAE lrt writes loads in SAELens (``SAE.load_from_disk``) and sparsify (``SparseCoder.load_from_disk``) with
the same encode / decode outputs, and SAEs those libraries write load in lrt with the same outputs. Skipped when
the packages are not installed (they are not runtime dependencies)."""

from __future__ import annotations

import pytest
import torch

from lrt.maps.affine import AffineMap
from lrt.sae.formats import load_sae, save_saelens, save_sparsify
from lrt.sae.transfer import transfer_sae

from test_sae import random_sae


@pytest.mark.parametrize("arch", ["topk", "jumprelu", "standard"])
def test_saelens_reads_what_lrt_writes(tmp_path, arch):
    sae_lens = pytest.importorskip("sae_lens")
    ours = random_sae(arch=arch)
    save_saelens(ours, tmp_path)
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path))
    x = torch.randn(64, ours.d_in) * 2
    with torch.no_grad():
        torch.testing.assert_close(theirs.encode(x), ours.encode(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(theirs.decode(ours.encode(x)), ours.decode(ours.encode(x)), rtol=1e-5, atol=1e-5)
    assert theirs.cfg.metadata.hook_name == "blocks.3.hook_resid_post"


def test_saelens_reads_a_transferred_sae(tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    g = torch.Generator().manual_seed(0)
    up = AffineMap(torch.randn(40, 24, generator=g), torch.randn(40, generator=g), "s", "l", 3, 5)
    down = AffineMap(torch.randn(24, 40, generator=g) / 6, torch.randn(24, generator=g), "l", "s", 5, 3)
    big = transfer_sae(random_sae(), up, down)
    save_saelens(big, tmp_path)
    theirs = sae_lens.SAE.load_from_disk(str(tmp_path))
    x = torch.randn(64, 40, generator=g)
    with torch.no_grad():
        torch.testing.assert_close(theirs(x), big(x), rtol=1e-5, atol=1e-4)
    assert theirs.cfg.metadata.hook_name == "blocks.5.hook_resid_post"


def test_lrt_reads_what_saelens_writes(tmp_path):
    sae_lens = pytest.importorskip("sae_lens")
    from sae_lens.saes.topk_sae import TopKSAE, TopKSAEConfig

    torch.manual_seed(0)      # SAELens initialises from the global RNG
    theirs = TopKSAE(TopKSAEConfig(d_in=24, d_sae=96, k=7, metadata=sae_lens.saes.sae.SAEMetadata(
        model_name="m", hook_name="blocks.2.hook_resid_post")))
    with torch.no_grad():
        for p in theirs.parameters():
            p.add_(0.1 * torch.randn_like(p))
    theirs.save_model(str(tmp_path))
    ours = load_sae(tmp_path)
    x = torch.randn(64, 24) * 2
    with torch.no_grad():
        torch.testing.assert_close(ours.encode(x), theirs.encode(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(ours(x), theirs(x), rtol=1e-5, atol=1e-5)
    assert ours.k == 7 and ours.meta["layer"] == 2


def test_sparsify_round_trips(tmp_path):
    sparsify = pytest.importorskip("sparsify")
    ours = random_sae()
    save_sparsify(ours, tmp_path / "layers.3")
    theirs = sparsify.SparseCoder.load_from_disk(tmp_path / "layers.3")
    x = torch.randn(64, ours.d_in) * 2
    with torch.no_grad():
        enc = theirs.encode(x)
        dense = torch.zeros(64, ours.d_sae).scatter_(-1, enc.top_indices, enc.top_acts)
        torch.testing.assert_close(dense, ours.encode(x), rtol=1e-5, atol=1e-5)
        torch.testing.assert_close(theirs.decode(enc.top_acts, enc.top_indices), ours(x), rtol=1e-5, atol=1e-5)
    torch.manual_seed(1)
    coder = sparsify.SparseCoder(24, sparsify.SparseCoderConfig(k=5, num_latents=80))
    with torch.no_grad():
        coder.b_dec.add_(torch.randn(24))
        coder.encoder.bias.add_(0.1 * torch.randn(80))
    coder.save_to_disk(tmp_path / "theirs" / "layers.1")
    back = load_sae(tmp_path / "theirs" / "layers.1")
    with torch.no_grad():
        enc = coder.encode(x)
        torch.testing.assert_close(back(x), coder.decode(enc.top_acts, enc.top_indices), rtol=1e-5, atol=1e-5)
    assert back.k == 5 and back.meta["layer"] == 1
