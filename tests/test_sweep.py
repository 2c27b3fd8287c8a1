"""Issue 'Which layer maps to which': one-pass sweep, CKA, inverse and many-to-one maps, stitched loss, joint
objective, and their bad inputs."""

from __future__ import annotations

import json

import pytest
import torch

from lrt.cli import main
from lrt.errors import DimensionMismatchError, LayerRangeError, ResourceError
from lrt.evaluate.config import StitchConfig
from lrt.evaluate.stitch import stitch
from lrt.harvest.config import HarvestConfig
from lrt.maps.affine import AffineMap
from lrt.maps.config import FitConfig, SweepConfig
from lrt.maps.fit import fit_map, fit_map_pair
from lrt.maps.joint import fit_joint, joint_loss
from lrt.maps.solve import solve_affine
from lrt.maps.sweep import sweep_layers
from lrt.models.layers import parse_layer_list
from lrt.models.load import load_model
from lrt.stats.moments import MomentStats

from conftest import tiny_config


@pytest.fixture(scope="module")
def zoo():
    return load_model("zoo-xs"), load_model("zoo-s")


def harvest(tokens=6000, **kw):
    return HarvestConfig(tokens=tokens, context=64, batch_size=8, progress=False, **kw)


@pytest.fixture(scope="module")
def embedded_pair(tmp_path_factory, tiny_tokenizer):
    """A 2-block source and a 4-block target whose embedding and first two blocks are the source's: target layers
    embed, 0 and 1 are exact (identity) images of the source's; blocks 2 and 3 are random and strong."""
    from transformers import AutoModelForCausalLM

    tmp = tmp_path_factory.mktemp("embedded")
    torch.manual_seed(3)
    src = AutoModelForCausalLM.from_config(tiny_config("llama", len(tiny_tokenizer), 32, 2))
    tgt = AutoModelForCausalLM.from_config(tiny_config("llama", len(tiny_tokenizer), 32, 4))
    sd = {k: v for k, v in src.state_dict().items() if not k.startswith("model.norm") and "lm_head" not in k}
    tgt.load_state_dict(sd, strict=False)
    with torch.no_grad():
        for block in tgt.model.layers[2:]:
            block.mlp.down_proj.weight.mul_(40)
            block.self_attn.o_proj.weight.mul_(40)
    for m, name in ((src, "src"), (tgt, "tgt")):
        m.save_pretrained(tmp / name)
        tiny_tokenizer.save_pretrained(tmp / name)
    return load_model(str(tmp / "src")), load_model(str(tmp / "tgt"))


def test_sweep_picks_the_affine_image(embedded_pair, tiny_corpus):
    s, t = embedded_pair
    sw = sweep_layers(s, t, [0, 1], [0, 1, 2, 3], harvest(corpus=str(tiny_corpus)), FitConfig(ridge=1e-9))
    assert sw.best_target() == {0: 0, 1: 1}
    r2 = {(r["source_index"], r["target_index"]): r["heldout_r2"] for r in sw.pairs}
    assert r2[(0, 0)] > 0.9999 and r2[(1, 1)] > 0.9999
    assert max(r2[(1, 2)], r2[(1, 3)], r2[(0, 1)]) < 0.99
    cka = {(r["source_index"], r["target_index"]): r["cka"] for r in sw.pairs}
    assert cka[(1, 1)] == pytest.approx(1, abs=1e-9)


def test_sweep_pair_equals_dedicated_fit(zoo):
    s, t = zoo
    sw = sweep_layers(s, t, [-1, 0, 1], [0, 1, 2], harvest())
    for a, b in ((0, 1), (-1, 2)):
        one = fit_map(s, t, "embed" if a == -1 else a, b, harvest(), FitConfig(max_norm_ratio=0))
        m = sw.fit_map(a, b)
        assert m.meta["ridge"] == one.meta["ridge"]
        torch.testing.assert_close(m.A, one.A, rtol=1e-6, atol=1e-7)
        torch.testing.assert_close(m.p, one.p, rtol=1e-6, atol=1e-6)
        assert m.meta["metrics"]["heldout"]["r2"] == pytest.approx(one.meta["metrics"]["heldout"]["r2"], rel=1e-6)
        for side in ("source", "target"):     # each pair carries its own layers' norms (transfer's rescale uses them)
            assert m.meta["norms"][side]["median"] == pytest.approx(one.meta["norms"][side]["median"], rel=0.05)
        back = sw.fit_map(a, b, inverse=True)
        assert back.meta["norms"]["source"] == m.meta["norms"]["target"]
    # the inverse from the sweep equals fit-map --both's inverse
    _, inv = fit_map_pair(s, t, 1, 2, harvest(), FitConfig(max_norm_ratio=0))
    torch.testing.assert_close(sw.fit_map(1, 2, inverse=True).A, inv.A, rtol=1e-6, atol=1e-7)
    assert (inv.source, inv.target, inv.source_layer, inv.target_layer) == ("zoo-s", "zoo-xs", 2, 1)
    assert inv.meta["metrics"]["heldout"]["r2"] > inv.meta["metrics"]["shuffled_control_heldout"]["r2"] + 0.2
    # many-to-one: one layer is the one-to-one map; two layers fit the training rows at least as well as either
    torch.testing.assert_close(sw.fit_map([0], 1).A, sw.fit_map(0, 1).A)
    def train_r2(layers):
        st = sw.stats(layers, 1).train
        A, p = solve_affine(st, 1e-6)
        return 1 - float(st.sse_per_dim(A, p).sum() / st.sst_per_dim().sum())

    assert train_r2([-1, 0]) >= max(train_r2([-1]), train_r2([0])) - 1e-9


def test_cka_is_invariant_to_rotation_and_scale():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(500, 12, generator=g, dtype=torch.float64) @ torch.randn(12, 12, generator=g, dtype=torch.float64)
    q, _ = torch.linalg.qr(torch.randn(12, 12, generator=g, dtype=torch.float64))
    assert MomentStats.of(x, 3.0 * x @ q + 1.0).linear_cka() == pytest.approx(1.0, abs=1e-12)
    assert MomentStats.of(x, torch.randn(500, 12, generator=g, dtype=torch.float64)).linear_cka() < 0.1


def test_stitching_a_model_into_itself_with_the_identity_is_exact(zoo):
    _, t = zoo
    cfg = StitchConfig(eval_tokens=800, eval_context=64, progress=False)
    for layer in ("embed", 0, 2):
        eye = AffineMap(torch.eye(t.d_model), torch.zeros(t.d_model), t.name, t.name, layer, layer,
                        {"harvest": {"heldout_percent": 10.0}})
        r = stitch(t, t, eye, eye, cfg)
        for k in ("source→target", "target→source", "source→target→source", "target→source→target"):
            assert r["ce"][k] == r["ce"]["target"], (layer, k)
            assert r["kl"][k] == 0.0
        assert r["relative_increase"]["target, mean ablation"] > 0.2      # the floor is far above


def test_stitched_map_beats_mean_ablation_and_joint_objective(zoo):
    s, t = zoo
    up, down = fit_map_pair(s, t, 0, 1, harvest(8000))
    r = stitch(s, t, up, down, StitchConfig(eval_tokens=1500, eval_context=64, progress=False))
    rel = r["relative_increase"]
    assert 0 < rel["source→target"] < 0.5 * rel["target, mean ablation"]
    assert r["round_trips"] and r["tokens"] >= 1000
    # the joint objective, from the closed-form pair, lowers its own held-out loss
    g = torch.Generator().manual_seed(0)
    a = torch.randn(3000, 8, generator=g)
    b = a @ torch.randn(8, 12, generator=g) + 0.5 * torch.randn(3000, 12, generator=g)
    st = MomentStats.of(a[:2500], b[:2500])
    mk = lambda A, p, so, ta: AffineMap(A.float(), p.float(), so, ta, 0, 0)  # noqa: E731
    u0, d0 = mk(*solve_affine(st, 1e-9), "a", "b"), mk(*solve_affine(st.transposed(), 1e-9), "b", "a")
    u1, d1, hist = fit_joint(a[:2500], b[:2500], u0, d0, alpha=1.0, steps=600, lr=3e-3, heldout=(a[2500:], b[2500:]))
    before = float(joint_loss((u0.A, u0.p), (d0.A, d0.p), a[2500:], b[2500:], 1.0))
    after = float(joint_loss((u1.A, u1.p), (d1.A, d1.p), a[2500:], b[2500:], 1.0))
    assert after < 0.98 * before and hist[0]["heldout_loss"] == pytest.approx(before, rel=1e-5)


def test_layer_lists_and_bad_input(zoo, tmp_path):
    s, t = zoo
    assert parse_layer_list("all", 4) == [-1, 0, 1, 2, 3]
    assert parse_layer_list("0-3:2,embed", 4) == [-1, 0, 2]
    with pytest.raises(LayerRangeError, match=r"valid layers are 0..2"):
        parse_layer_list("0-5", 3, "zoo-s")
    with pytest.raises(ResourceError, match="GiB"):
        sweep_layers(s, t, [0, 1], [0, 1, 2], harvest(), sweep=SweepConfig(max_memory_gb=1e-4))
    wrong = AffineMap(torch.zeros(t.d_model, 7), torch.zeros(t.d_model), s.name, t.name, 0, 1)
    with pytest.raises(DimensionMismatchError, match="width 7"):
        stitch(s, t, wrong)
    other = AffineMap(torch.zeros(t.d_model, s.d_model), torch.zeros(t.d_model), "zoo-m", t.name, 0, 1)
    with pytest.raises(DimensionMismatchError, match="zoo-m"):
        stitch(s, t, other)
    # the CLI refuses before creating anything, with one line
    out = tmp_path / "never"
    assert main(["sweep-layers", "--source", "zoo-xs", "--target", "zoo-s", "--target-layers", "0-7", "--out",
                 str(out), "-q"]) == 2
    assert main(["sweep-layers", "--source", "zoo-xs", "--target", "zoo-s", "--max-memory-gb", "0.0001", "--out",
                 str(out), "-q"]) == 2
    assert not out.exists()


def test_cli_sweep_stitch_fit_map_both_and_report(tmp_path, capsys):
    out = tmp_path / "sweep"
    assert main(["sweep-layers", "--source", "zoo-xs", "--target", "zoo-s", "--source-layers", "0,1",
                 "--target-layers", "blocks", "--tokens", "5000", "--context", "64", "--eval-tokens", "600",
                 "--out", str(out), "-q"]) == 0
    res = json.loads((out / "results.json").read_text())
    assert res["kind"] == "lrt_sweep" and len(res["pairs"]) == 6 and len(res["stitched"]) == 2
    assert all(r["heldout_r2"] > r["shuffled_r2"] + 0.2 for r in res["pairs"])
    assert any("stitched_ce" in r for r in res["many_to_one"])
    page = (out / "report.html").read_text()
    assert "Layer sweep" in page and "Stitched next-token loss" in page and "data:image/png" in page
    assert (out / "heatmap.png").stat().st_size > 1000
    best = res["best_target"]["0"]
    assert (out / "maps" / f"0-{best}" / "inverse" / "map.json").exists()
    assert main(["report", str(out), "--output", str(tmp_path / "r.html")]) == 0
    assert main(["stitch", "--map", str(out / "maps" / f"0-{best}"), "--eval-tokens", "600", "--eval-context", "64",
                 "--out", str(tmp_path / "st"), "-q"]) == 0
    st = json.loads((tmp_path / "st" / "stitch.json").read_text())
    assert st["inverse"] and st["round_trips"]
    assert main(["stitch", "--map", str(out / "maps" / f"0-{best}"), "--target", "zoo-m", "--out",
                 str(tmp_path / "st2"), "-q"]) == 2
    assert "lrt: error:" in capsys.readouterr().err
    fm = tmp_path / "fm"
    assert main(["fit-map", "--source", "zoo-xs", "--target", "zoo-s", "--tokens", "4000", "--context", "64",
                 "--both", "--out", str(fm), "-q"]) == 0
    inv = AffineMap.load(fm / "inverse")
    assert (inv.source, inv.target) == ("zoo-s", "zoo-xs") and inv.A.shape == (128, 192)
