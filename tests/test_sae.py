"""Issue 'Features across models': SAE formats, TopK training, transfer through the maps, and bad input."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from safetensors.torch import save_file

from lrt.cli import main
from lrt.errors import ArtifactError, ConfigError, DimensionMismatchError
from lrt.harvest.config import HarvestConfig
from lrt.maps.affine import AffineMap
from lrt.models.load import load_model
from lrt.sae.config import SAETrainConfig
from lrt.sae.formats import layer_of_hook, load_sae, save_saelens, save_sparsify
from lrt.sae.model import SparseAutoencoder
from lrt.sae.train import init_sae, train_sae
from lrt.sae.transfer import refit_decoder, transfer_sae


def random_sae(d=24, n=96, arch="topk", k=6, seed=0, c=True) -> SparseAutoencoder:
    g = torch.Generator().manual_seed(seed)
    t = {"W_enc": torch.randn(d, n, generator=g) / d ** 0.5, "b_enc": 0.1 * torch.randn(n, generator=g),
         "W_dec": torch.randn(n, d, generator=g) / d ** 0.5, "b_dec": torch.randn(d, generator=g)}
    if arch == "jumprelu":
        t["threshold"] = 0.2 * torch.rand(n, generator=g)
    return SparseAutoencoder.from_tensors(t, arch, k if arch == "topk" else None, c,
                                          {"model": "m", "layer": 3})


@pytest.mark.parametrize("arch", ["topk", "jumprelu", "standard"])
def test_saelens_round_trip(tmp_path, arch):
    sae = random_sae(arch=arch)
    save_saelens(sae, tmp_path / arch)
    cfg = json.loads((tmp_path / arch / "cfg.json").read_text())
    assert cfg["architecture"] == arch and cfg["d_in"] == 24 and cfg["d_sae"] == 96
    assert cfg["metadata"]["hook_name"] == "blocks.3.hook_resid_post"
    back = load_sae(tmp_path / arch)
    for k, v in sae.tensors().items():
        assert torch.equal(back.tensors()[k], v)
    x = torch.randn(50, 24)
    assert torch.equal(back.encode(x), sae.encode(x)) and torch.equal(back(x), sae(x))
    assert back.meta["layer"] == 3 and "lrt layer 3" in back.meta["layer_note"]


def test_sparsify_gemmascope_and_old_saelens_configs(tmp_path):
    sae = random_sae()
    save_sparsify(sae, tmp_path / "sp" / "layers.3")
    back = load_sae(tmp_path / "sp" / "layers.3")
    x = torch.randn(40, 24)
    assert torch.equal(back.encode(x), sae.encode(x)) and back.meta["layer"] == 3 and back.k == 6
    # GemmaScope: JumpReLU params.npz, no b_dec subtraction, layer from the folder name
    j = random_sae(arch="jumprelu", c=False)
    g = tmp_path / "layer_7" / "width_16k" / "average_l0_40"
    g.mkdir(parents=True)
    np.savez(g / "params.npz", **{k: v.numpy() for k, v in j.tensors().items()})
    gs = load_sae(g)
    assert gs.architecture == "jumprelu" and gs.meta["layer"] == 7 and torch.allclose(gs(x), j(x))
    # an older SAELens config: flat hook_point, k under activation_fn_kwargs
    old = tmp_path / "old"
    save_saelens(sae, old)
    cfg = json.loads((old / "cfg.json").read_text())
    md = cfg.pop("metadata")
    cfg.pop("k")
    cfg.update({"hook_point": "blocks.5.hook_resid_pre", "model_name": md["model_name"],
                "activation_fn_kwargs": {"k": 6}})
    (old / "cfg.json").write_text(json.dumps(cfg))
    o = load_sae(old)
    assert o.k == 6 and o.meta["layer"] == 4 and torch.equal(o.encode(x), sae.encode(x))
    assert layer_of_hook("blocks.0.hook_resid_pre")[0] == "embed"


def test_transfer_through_an_exact_relation_keeps_fvu():
    """h_T = s·Q·h_S + c with Q of orthonormal columns: the transferred SAE reconstructs h_T exactly as well as
    the source SAE reconstructs h_S, with the same codes."""
    g = torch.Generator().manual_seed(1)
    d_s, d_t = 24, 40
    q, _ = torch.linalg.qr(torch.randn(d_t, d_s, generator=g, dtype=torch.float64))
    s, c = 3.0, torch.randn(d_t, generator=g, dtype=torch.float64)
    up = AffineMap((s * q).float(), c.float(), "small", "large", 3, 5)
    down = AffineMap((q.T / s).float(), (-(q.T @ c) / s).float(), "large", "small", 5, 3)
    sae = random_sae()
    big = transfer_sae(sae, up, down)
    h_s = torch.randn(500, d_s, generator=g, dtype=torch.float64).float() * 2
    h_t = (h_s.double() @ (s * q).T + c).float()
    assert big.meta["model"] == "large" and big.meta["layer"] == 5 and not big.apply_b_dec_to_input
    assert torch.equal(big.encode(h_t) > 0, sae.encode(h_s) > 0)
    assert big.fvu(h_t) == pytest.approx(sae.fvu(h_s), abs=1e-6)
    with pytest.raises(DimensionMismatchError, match="inverse pair"):
        transfer_sae(sae, up, AffineMap(down.A, down.p, "large", "small", 6, 3))
    with pytest.raises(DimensionMismatchError, match="width"):
        transfer_sae(random_sae(d=10, n=40, k=4), up, down)


@pytest.fixture(scope="module")
def trained():
    lm = load_model("zoo-xs")
    cfg = SAETrainConfig(k=8, expansion=4, lr=1e-3, sae_batch_size=256, eval_every=20, shuffle_rows=4096)
    return lm, train_sae(lm, 0, HarvestConfig(tokens=40_000, context=64, batch_size=8, progress=False), cfg)


def test_training_topk_unit_decoder_flops_and_learning(trained):
    lm, res = trained
    sae = res.sae
    x = torch.randn(300, lm.d_model) * 5
    assert ((sae.encode(x) > 0).sum(-1) <= 8).all()
    pre = sae.pre_acts(x)
    full = (pre.topk(8, -1).values > 0).all(-1)               # rows whose 8 largest pre-activations are positive
    assert full.any() and ((sae.encode(x) > 0).sum(-1)[full] == 8).all()
    assert torch.allclose(sae.W_dec.norm(dim=1), torch.ones(sae.d_sae), atol=1e-5)
    B, d, n = 256, lm.d_model, sae.d_sae
    # the dense encoder product, and the sparse decoder / gradients over the 8 selected latents a row
    assert res.flops_per_step == pytest.approx(2 * B * d * n + 10 * B * 8 * d, rel=0.05)
    first, last = res.history[0], res.history[-1]
    assert last["heldout_fvu"] < 0.6 * first["heldout_fvu"] and last["heldout_fvu"] < 0.45
    assert last["l0"] == pytest.approx(8, abs=0.05) and last["flops"] == res.flops_per_step * res.steps
    assert res.tokens == res.steps * 256


def test_cli_train_transfer_and_bad_input(tmp_path, capsys):
    sae_dir, map_dir, big = tmp_path / "sae", tmp_path / "map", tmp_path / "big"
    assert main(["sae", "train", "--model", "zoo-xs", "--layer", "0", "--tokens", "30000", "--context", "64",
                 "--k", "8", "--expansion", "4", "--lr", "0.001", "--sae-batch-size", "256",
                 "--eval-tokens", "1500", "--out", str(sae_dir), "-q"]) == 0
    metrics = json.loads((sae_dir / "metrics.json").read_text())
    final, rows = metrics["final"], metrics["history"]
    assert final["fvu"] < 0.6 and final["l0"] == pytest.approx(8, abs=0.01) and final["delta_loss"] > 0
    # every metric row measures Δloss on the same held-out tokens: it falls as the SAE learns
    assert len(rows) >= 3 and all(r["delta_loss"] > 0 for r in rows)
    assert rows[-1]["delta_loss"] < 0.8 * rows[0]["delta_loss"]
    assert main(["fit-map", "--source", "zoo-xs", "--target", "zoo-m", "--source-layer", "0", "--target-layer", "0",
                 "--tokens", "20000", "--context", "64", "--both", "--out", str(map_dir), "-q"]) == 0
    assert main(["sae", "transfer", "--sae", str(sae_dir), "--up", str(map_dir), "--eval-tokens", "1500",
                 "--out", str(big), "-q"]) == 0
    m = json.loads((big / "metrics.json").read_text())
    src, tr = m["source"], m["transferred"]
    # zero-shot on zoo-m: worse than on its own model, far better than an untrained SAE of the same shape
    lm = load_model("zoo-m")
    from lrt.evaluate.config import StitchConfig
    from lrt.evaluate.sae_metrics import sae_metrics
    rnd = init_sae(lm.d_model, tr_n := load_sae(big).d_sae, 8, torch.zeros(lm.d_model), 0, {"layer": 0})
    r = sae_metrics(lm, rnd, StitchConfig(eval_tokens=1500, progress=False))
    assert src["fvu"] < tr["fvu"] < r["fvu"] - 0.3 and tr_n == 512
    assert tr["delta_loss"] < r["delta_loss"] - 0.5
    # the large model's SAE trained from the transferred one, its decoder refitted first
    warm = tmp_path / "warm"
    assert main(["sae", "train", "--model", "zoo-m", "--layer", "0", "--init", str(big), "--refit-tokens", "8000",
                 "--tokens", "20000", "--context", "64", "--lr", "0.001", "--sae-batch-size", "256",
                 "--eval-every", "5", "--eval-tokens", "1500", "--delta-loss-tokens", "0", "--out", str(warm),
                 "-q"]) == 0
    w = json.loads((warm / "metrics.json").read_text())
    assert w["history"][0]["heldout_fvu"] < tr["fvu"] - 0.05 and load_sae(warm).d_sae == tr_n
    # bad input: each one clear error, nothing written
    capsys.readouterr()
    assert main(["sae", "train", "--model", "zoo-xs", "--layer", "0", "--k", "600", "--expansion", "4",
                 "--out", str(tmp_path / "no1"), "-q"]) == 2
    assert main(["sae", "transfer", "--sae", str(map_dir), "--up", str(map_dir), "--out", str(tmp_path / "no2"),
                 "-q"]) == 2
    assert main(["sae", "train", "--model", "zoo-m", "--layer", "0", "--refit-tokens", "100",
                 "--out", str(tmp_path / "no3"), "-q"]) == 2
    assert main(["sae", "train", "--model", "zoo-m", "--layer", "1", "--init", str(big),
                 "--out", str(tmp_path / "no4"), "-q"]) == 2
    err = capsys.readouterr().err
    assert err.count("lrt: error:") == 4 and "sae_weights.safetensors" in err and "k (600)" in err
    assert "--init" in err and "layer 0, not 1" in err
    assert not any((tmp_path / f"no{i}").exists() for i in range(1, 5))
    with pytest.raises(DimensionMismatchError, match="width 128"):
        load_sae(big).encode(torch.zeros(3, 128))
    j = tmp_path / "jr"
    save_saelens(random_sae(arch="jumprelu"), j)
    from safetensors.torch import load_file
    w = load_file(str(j / "sae_weights.safetensors"))
    w.pop("threshold")
    save_file(w, str(j / "sae_weights.safetensors"))
    cfg = json.loads((j / "cfg.json").read_text())
    cfg["metadata"]["lrt"].pop("sha256")
    (j / "cfg.json").write_text(json.dumps(cfg))
    with pytest.raises(ArtifactError, match="threshold"):
        load_sae(j)
    with pytest.raises(ConfigError, match="k"):
        SAETrainConfig(k=64, latents=64)


def test_decoder_refit_recovers_the_true_directions():
    """Data made by a known k-sparse dictionary (orthonormal rows, so the tied encoder finds the true codes); the
    SAE's decoder is replaced by random rows: the refit puts back the true directions and bias, FVU ≈ 0."""
    g = torch.Generator().manual_seed(0)
    d, n, k = 64, 48, 4
    D = torch.linalg.qr(torch.randn(d, n, generator=g))[0].T          # [n, d], orthonormal rows
    b = torch.randn(d, generator=g)

    def batch(m):
        z = torch.zeros(m, n)
        idx = torch.rand(m, n, generator=g).argsort(1)[:, :k]
        z.scatter_(1, idx, torch.rand(m, k, generator=g) + 0.5)
        return z @ D + b

    items = [(batch(500), i % 5 == 4) for i in range(20)]
    sae = SparseAutoencoder(d, n, "topk", k, True)
    W = torch.randn(n, d, generator=g)
    sae.W_enc.data, sae.b_dec.data = D.T.clone(), b.clone()
    sae.W_dec.data = 3 * W / W.norm(dim=1, keepdim=True)      # wrong directions, norm 3 (folded into the encoder)
    ev = torch.cat([x for x, h in items if h])
    out, info = refit_decoder(sae, iter(items), rows=4000)
    assert sae.fvu(ev) > 0.5 and info["heldout_fvu_before"] > 0.5
    assert info["rows"] == 4000 and info["latents_refitted"] == n
    cos = (out.W_dec * D).sum(1)
    assert cos.min() > 0.999 and torch.allclose(out.W_dec.norm(dim=1), torch.ones(n), atol=1e-5)
    assert torch.allclose(out.b_dec, b, atol=1e-3)
    assert torch.allclose(out.W_enc, sae.W_enc * 3, rtol=1e-5)  # encoder: only the folded norm
    # the codes are 3× the true ones (norm folded), the unit directions are right: the refit row norm says so
    assert abs(info["refitted_row_norm"]["median"] - 1 / 3) < 0.01
    with pytest.raises(ConfigError, match="refit"):
        refit_decoder(sae, iter(items[:1]), rows=0)


def test_encoder_completion_recovers_a_tied_encoder_seen_through_a_rank_deficient_map():
    """A tied encoder (s × the decoder's transpose) projected on a rank-16 subspace of 32 dims, as a down map
    would: the basis is that subspace and γ = 1 puts the tied encoder back exactly. On data made by that dictionary
    the refit's γ search picks a completion that takes the held-out FVU from 0.35 to near the tied SAE's 0.05."""
    from lrt.sae.transfer import complete_encoder, encoder_basis

    g = torch.Generator().manual_seed(3)
    d, n, r, k = 32, 64, 16, 2
    D = torch.randn(n, d, generator=g)
    D /= D.norm(dim=1, keepdim=True)
    Q = torch.linalg.qr(torch.randn(d, r, generator=g, dtype=torch.float64))[0]

    def projected(scale):
        sae = SparseAutoencoder(d, n, "topk", k, False)
        sae.W_dec.data = D.clone()
        sae.W_enc.data = (Q @ Q.T @ (scale * D.T).double()).float()
        return sae

    sae = projected(2.5)
    basis = encoder_basis(sae)
    assert basis.shape == (d, r) and torch.allclose(basis @ basis.T, Q @ Q.T, atol=1e-5)
    assert torch.allclose(complete_encoder(sae, 1.0, basis).W_enc, 2.5 * D.T, atol=1e-4)
    half = complete_encoder(sae, 0.5, basis).W_enc
    assert torch.allclose(half, sae.W_enc + 0.5 * (2.5 * D.T - sae.W_enc), atol=1e-4)
    assert encoder_basis(complete_encoder(sae, 1.0, basis)) is None          # full rank: nothing to complete

    def batch(m):
        z = torch.zeros(m, n)
        z.scatter_(1, torch.rand(m, n, generator=g).argsort(1)[:, :k], torch.rand(m, k, generator=g) + 1.0)
        return z @ D

    items = [(batch(500), i % 5 == 4) for i in range(20)]
    ev = torch.cat([x for x, h in items if h])
    tied = complete_encoder(projected(1.0), 1.0, basis).fvu(ev)
    out, info = refit_decoder(projected(1.0), iter(items), rows=4000)
    comp = info["encoder_completion"]
    assert tied < 0.08 and info["heldout_fvu_before"] > 0.3
    assert comp["rank"] == r and comp["gamma"] >= 0.5 and comp["fvu_by_gamma"]["0.0"] > 0.3
    assert info["heldout_fvu_after"] < tied + 0.03 and encoder_basis(out) is None


def test_flops_to_reach_and_power_law_recover_a_known_curve():
    from lrt.pipelines.sae_init import flops_to_reach, power_law

    hist = [{"flops": c, "heldout_fvu": 3.0 * c ** -0.25} for c in (1e8, 2e8, 4e8, 8e8, 1.6e9)]
    assert power_law(hist) == {"a": pytest.approx(3.0, rel=1e-6), "beta": pytest.approx(0.25, rel=1e-6)}
    target = 3.0 * 3e8 ** -0.25                       # between the rows at 2e8 and 4e8
    got = flops_to_reach(hist, target, offset=1e8)
    assert 3e8 < got < 5e8 and flops_to_reach(hist, 0.01) is None
    assert flops_to_reach(hist, 10.0) == 1e8          # reached at the first row


def test_compare_init_cli_transferred_start_is_ahead(tmp_path):
    out = tmp_path / "ci"
    assert main(["sae", "compare-init", "--tokens", "30000", "--small-tokens", "15000", "--map-tokens", "8000",
                 "--context", "64", "--k", "8", "--expansion", "4", "--lr", "0.001", "--sae-batch-size", "256",
                 "--eval-every", "10", "--refit-tokens", "10000", "--out", str(out), "-q"]) == 0
    r = json.loads((out / "results.json").read_text())
    scratch, warm = r["curves"]["scratch"], r["curves"]["transferred"]
    refit = r["curves"]["refit"]            # the decoder refitted on the large model's states: ahead of both
    assert r["decoder_refit"]["heldout_fvu_after"] < r["decoder_refit"]["heldout_fvu_before"] - 0.05
    assert refit[0]["heldout_fvu"] < warm[0]["heldout_fvu"] - 0.05 and refit[-1]["heldout_fvu"] < warm[-1]["heldout_fvu"]
    acc = r["accountings"]["sae, nothing charged"]
    assert acc["refit"]["saving"] > acc["saving"]
    assert r["zero_shot_fvu"] < 0.8 and warm[0]["heldout_fvu"] < scratch[0]["heldout_fvu"] - 0.1
    assert r["accountings"]["sae, nothing charged"]["saving"] > 0.1
    assert (out / "fvu_vs_flops.png").stat().st_size > 1000
    page = (out / "report.html").read_text()
    assert "FLOPs to the target FVU" in page and "data:image/png;base64," in page
    saved = r["accountings"]["sae, nothing charged"]["saving"]
    assert f"{saved:.0%}" in page                                    # the table shows the measured saving
    assert main(["report", str(out), "-o", str(tmp_path / "again.html")]) == 0   # lrt report reads the kind
    assert (tmp_path / "again.html").read_text() == page
    comp = r["decoder_refit"]["encoder_completion"]     # zoo-xs → zoo-m: the transferred encoder has rank 128 of 256
    assert comp["rank"] == 128 and comp["fvu_by_gamma"][str(comp["gamma"])] == min(comp["fvu_by_gamma"].values())
    wall = r["wall_seconds_to_target"]
    assert set(wall) == {"scratch", "transferred", "refit"} and 0 < wall["scratch"] <= scratch[-1]["seconds"]
    assert "Wall time to the target" in page
    sizes = {x.get("eval_rows") for c in r["curves"].values() for x in c}    # one fixed held-out set, every row
    assert len(sizes) == 1 and sizes.pop() > 0


def test_sparse_moments_and_s2l_map(trained):
    from lrt.maps.config import FitConfig
    from lrt.sae.s2l import feature_direction, fit_s2l
    from lrt.stats.moments import MomentStats

    g = torch.Generator().manual_seed(0)
    z = torch.randn(400, 64, generator=g).relu() * (torch.rand(400, 64, generator=g) < 0.1)
    y = torch.randn(400, 16, generator=g) + 3
    a, b = MomentStats.of(z, y), MomentStats.of_sparse(z, y)
    for t in ("mean_x", "mean_y", "cxx", "cxy", "cyy"):
        torch.testing.assert_close(getattr(b, t), getattr(a, t), rtol=1e-10, atol=1e-10)
    lm, res = trained
    m = load_model("zoo-s")
    s2l = fit_s2l(lm, m, res.sae, 1, HarvestConfig(tokens=8000, context=64, progress=False), FitConfig())
    assert s2l.A.shape == (m.d_model, res.sae.d_sae) and s2l.meta["input"] == "sae_codes"
    assert s2l.meta["metrics"]["heldout"]["r2"] > 0.3
    assert feature_direction(s2l, 5).shape == (m.d_model,)
    with pytest.raises(ConfigError, match="out of range"):
        feature_direction(s2l, res.sae.d_sae)


def test_feature_match_of_an_sae_with_itself_is_perfect(trained, tmp_path):
    from lrt.evaluate.config import StitchConfig
    from lrt.evaluate.sae_features import feature_match
    from lrt.report.html import STYLE
    from lrt.report.sae import features_page

    lm, res = trained
    r = feature_match(lm, res.sae, res.sae, StitchConfig(eval_tokens=3000, eval_context=64, progress=False))
    live = [x for x in r["latents"] if x["fires"] > 0]
    assert live and all(x["activation_corr"] > 0.999 and x["best_native"] == x["latent"] for x in live
                        if x["kind"] != "rare")
    assert all(x["decoder_cos"] > 0.999 for x in r["latents"])
    kinds = {x["kind"] for x in r["latents"]}
    assert kinds <= {"structural", "semantic", "rare"} and r["tokens"] > 2500
    assert r["examples"] and r["examples"][0]["snippets"]
    page = features_page(r, STYLE)
    assert "Feature-level transfer" in page and "data:image/png" in page


def test_sparse_training_path_equals_the_dense_one():
    """encode_topk/decode_topk give the dense path's reconstruction and the same gradients."""
    grads = []
    for sparse in (False, True):
        sae = random_sae(d=24, n=96, k=6)
        for p in sae.parameters():
            p.requires_grad_(True)
        x = torch.randn(50, 24, generator=torch.Generator().manual_seed(3))
        rec = sae.decode_topk(*sae.encode_topk(x)) if sparse else sae(x)
        (x - rec).pow(2).sum().backward()
        grads.append({n: p.grad.clone() for n, p in sae.named_parameters()})
        if sparse:
            torch.testing.assert_close(rec.detach(), sae(x).detach(), rtol=1e-5, atol=1e-5)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec"):
        torch.testing.assert_close(grads[1][name], grads[0][name], rtol=1e-4, atol=1e-5)


def test_auxk_gives_dead_latents_gradient():
    from lrt.sae.train import _Trainer

    x = torch.randn(32, 24, generator=torch.Generator().manual_seed(0)) * 3
    moved = {}
    for alpha in (0.0, 1 / 32):
        tr = _Trainer(SAETrainConfig(k=4, latents=512, lr=1e-2, sae_batch_size=32, dead_tokens=100,
                                     auxk_alpha=alpha), 24, {})
        tr.start(x)
        tr.tokens = 1000
        live = tr.sae.encode(x).gt(0).any(0)
        tr.last_fired[live] = 1000                    # every latent that does not fire on x is dead
        before = tr.sae.W_enc.detach().clone()
        tr.step(x)
        moved[alpha] = (tr.sae.W_enc.detach() - before).abs().sum(0)[~live].sum()
    assert (~live).sum() > 10 and moved[0.0] == 0 and moved[1 / 32] > 0
    assert SAETrainConfig(recipe="sparsify").auxk() == 1 / 32 and SAETrainConfig().auxk() == 0
