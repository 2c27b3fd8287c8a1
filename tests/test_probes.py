"""Probes: fitting, AUROC, exact transfer through an affine relation, the CLI comparison, bad input."""

from __future__ import annotations

import json

import pytest
import torch

from lrt.cli import main
from lrt.data.labels import labelled_documents
from lrt.errors import DatasetError, DimensionMismatchError
from lrt.maps.affine import AffineMap
from lrt.probes.probe import LinearProbe, auroc, fit_probe, probe_down, probe_up

TEXT = "lrt:text"          # the corpus that ships with lrt (labelled by source)



def test_auroc_by_ranks():
    y = torch.tensor([0, 0, 1, 1])
    two = lambda s: torch.stack([1 - torch.tensor(s), torch.tensor(s)], 1)  # noqa: E731
    assert auroc(two([0.1, 0.2, 0.8, 0.9]), y) == 1.0
    assert auroc(two([0.9, 0.8, 0.2, 0.1]), y) == 0.0
    assert auroc(two([0.5, 0.5, 0.5, 0.5]), y) == 0.5
    assert auroc(two([0.1, 0.6, 0.4, 0.9]), y) == 0.75


def test_probe_transfers_exactly_through_an_exact_relation(tmp_path):
    g = torch.Generator().manual_seed(0)
    d_s, d_l, n = 12, 20, 600
    xs = torch.randn(n, d_s, generator=g, dtype=torch.float64)
    w = torch.randn(d_s, generator=g, dtype=torch.float64)
    labels = ["pos" if v > 0 else "neg" for v in (xs @ w + 0.3 * torch.randn(n, generator=g, dtype=torch.float64))]
    q, _ = torch.linalg.qr(torch.randn(d_l, d_s, generator=g, dtype=torch.float64))
    c = torch.randn(d_l, generator=g, dtype=torch.float64)
    xl = xs @ (2 * q).T + c
    up = AffineMap((2 * q).float(), c.float(), "s", "l", 1, 2)
    down = AffineMap((q.T / 2).float(), (-(q.T @ c) / 2).float(), "l", "s", 2, 1)
    p = fit_probe(xs[:400], labels[:400], "s", 1)
    own = p.evaluate(xs[400:], labels[400:])
    assert own["accuracy"] > 0.85
    for moved in (probe_up(p, up), probe_down(p, down)):
        assert moved.model == "l" and moved.layer == 2
        got = moved.evaluate(xl[400:], labels[400:])
        assert got["accuracy"] == own["accuracy"] and got["auroc"] == pytest.approx(own["auroc"], abs=1e-6)
    p.save(tmp_path / "p")
    back = LinearProbe.load(tmp_path / "p")
    assert back.classes == ["neg", "pos"] and torch.equal(back.predict(xs), p.predict(xs))
    with pytest.raises(DimensionMismatchError):
        probe_up(p, down)
    with pytest.raises(DatasetError, match="two classes"):
        fit_probe(xs[:10], ["pos"] * 10, "s", 1)


def test_labelled_documents_split_by_document():
    docs = labelled_documents(TEXT, "source", per_class=40)
    assert {d["label"] for d in docs} == {"abc", "brown", "inaugural", "movie_reviews", "webtext"}   # state_union: 15 documents, under the minimum
    tr = {d["doc_id"] for d in docs if d["split"] == "train"}
    te = {d["doc_id"] for d in docs if d["split"] == "test"}
    assert tr and te and not tr & te and 0.15 < len(te) / len(docs) < 0.45
    with pytest.raises(DatasetError, match="genre"):
        labelled_documents(TEXT, "genre:z:a")
    with pytest.raises(DatasetError, match="unknown probe task"):
        labelled_documents(TEXT, "colour")


def test_cli_compare_transferred_probe_beats_chance(tmp_path, capsys):
    m = tmp_path / "map"
    assert main(["fit-map", "--source", "zoo-xs", "--target", "zoo-m", "--source-layer", "0", "--target-layer", "0",
                 "--tokens", "20000", "--context", "64", "--both", "--out", str(m), "-q"]) == 0
    out = tmp_path / "pc"
    assert main(["probe", "compare", "--up", str(m), "--task", "source", "--corpus", TEXT,
                 "--per-class", "40", "--max-tokens", "96", "--out", str(out)]) == 0
    rows = {r["probe"].split(" (")[0]: r for r in json.loads((out / "results.json").read_text())["rows"]}
    chance = rows["chance"]["accuracy"]
    assert rows["native"]["accuracy"] > chance + 0.4
    assert rows["transferred down"]["accuracy"] > chance + 0.4 and rows["transferred up"]["accuracy"] > chance + 0.3
    assert main(["probe", "compare", "--up", str(m), "--task", "colour", "--corpus", TEXT,
                 "--out", str(tmp_path / "no")]) == 2
    assert "unknown probe task" in capsys.readouterr().err and not (tmp_path / "no").exists()


def test_sparse_probes_on_sae_latents():
    from lrt.harvest.config import HarvestConfig
    from lrt.models.load import load_model
    from lrt.pipelines.probes import sparse_probes
    from lrt.sae.config import SAETrainConfig
    from lrt.sae.train import train_sae

    lm = load_model("zoo-m")
    sae = train_sae(lm, 0, HarvestConfig(tokens=20_000, context=64, progress=False),
                    SAETrainConfig(k=8, expansion=2, lr=1e-3, sae_batch_size=256)).sae
    docs = labelled_documents(TEXT, "source", per_class=30)
    rows = sparse_probes(lm, 0, {"native": sae}, docs, ks=(1, 5), max_tokens=64)
    assert [r["k"] for r in rows] == [1, 5] and len(rows[1]["latents"]) == 5
    assert rows[1]["accuracy"] > 0.35 and rows[1]["auroc"] > 0.65          # six classes: chance ≈ 0.25 / 0.5
