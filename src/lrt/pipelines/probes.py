"""Probes across models: one labelled task, the small model's probe carried to the large one both ways, against
a probe trained natively on the large model, a probe on a random projection of equal rank, and chance."""

from __future__ import annotations

import torch

from ..maps.affine import AffineMap
from ..models.load import LoadedModel
from ..probes.features import pooled_codes, pooled_states
from ..probes.probe import fit_probe, probe_down, probe_up


def compare_probes(small: LoadedModel, large: LoadedModel, up: AffineMap, down: AffineMap | None, docs: list[dict],
                   max_tokens: int = 256, seed: int = 0, progress: bool = False) -> dict:
    """Rows of ``{probe, model, accuracy, auroc}`` on the test split of ``docs``
    (:func:`lrt.data.labels.labelled_documents`), and the split sizes."""
    tr = [d for d in docs if d["split"] == "train"]
    te = [d for d in docs if d["split"] == "test"]
    ytr, yte = [d["label"] for d in tr], [d["label"] for d in te]
    ls, lt = small.layer_index(up.source_layer), large.layer_index(up.target_layer)
    feats = {}
    for name, lm, layer in (("small", small, ls), ("large", large, lt)):
        feats[name] = [pooled_states(lm, layer, [d["text"] for d in part], max_tokens, progress=progress)
                       for part in (tr, te)]
    own = fit_probe(feats["small"][0], ytr, small.name, up.source_layer, seed=seed)
    native = fit_probe(feats["large"][0], ytr, large.name, up.target_layer, seed=seed)
    g = torch.Generator().manual_seed(seed)
    R = torch.randn(small.d_model, large.d_model, generator=g, dtype=torch.float64) / large.d_model ** 0.5
    rand = fit_probe(feats["large"][0].double() @ R.T, ytr, large.name, up.target_layer, seed=seed)
    rows = [{"probe": "small model's own", "model": small.name, **own.evaluate(feats["small"][1], yte)},
            {"probe": "native (trained on the large model)", "model": large.name,
             **native.evaluate(feats["large"][1], yte)},
            {"probe": "transferred up (weights through A↑⁺)", "model": large.name,
             **probe_up(own, up).evaluate(feats["large"][1], yte)}]
    if down is not None:
        rows.append({"probe": "transferred down (states through A↓)", "model": large.name,
                     **probe_down(own, down).evaluate(feats["large"][1], yte)})
    rows.append({"probe": f"random projection to rank {small.d_model}, trained", "model": large.name,
                 **rand.evaluate(feats["large"][1].double() @ R.T, yte)})
    majority = max(set(yte), key=yte.count) if yte else None
    rows.append({"probe": "chance (majority class)", "model": "—", "n": len(yte),
                 "accuracy": round(yte.count(majority) / max(1, len(yte)), 6), "auroc": 0.5})
    counts = {s: {c: sum(1 for d in docs if d["split"] == s and d["label"] == c) for c in sorted(set(ytr + yte))}
              for s in ("train", "test")}
    return {"rows": rows, "classes": own.classes, "split": counts,
            "l2": {"small": own.meta["l2"], "native": native.meta["l2"]}}


def sparse_probes(lm: LoadedModel, layer: int, saes: dict, docs: list[dict], ks=(1, 2, 5), max_tokens: int = 256,
                  seed: int = 0) -> list[dict]:
    """SAEBench-style k-sparse probes: for each SAE (by name) the latents ranked by the difference of their mean
    pooled code between the classes on the training split (the largest over classes, one-vs-rest), a logistic
    probe on the top ``k``; accuracy and AUROC on the test split of ``docs``."""
    tr = [d for d in docs if d["split"] == "train"]
    te = [d for d in docs if d["split"] == "test"]
    ytr, yte = [d["label"] for d in tr], [d["label"] for d in te]
    classes = sorted(set(ytr))
    rows = []
    for name, sae in saes.items():
        ztr = pooled_codes(lm, layer, sae, [d["text"] for d in tr], max_tokens)
        zte = pooled_codes(lm, layer, sae, [d["text"] for d in te], max_tokens)
        y = torch.tensor([classes.index(c) for c in ytr])
        score = torch.stack([ztr[y == c].mean(0) - ztr[y != c].mean(0) for c in range(len(classes))]).abs().max(0).values
        order = score.argsort(descending=True)
        for k in ks:
            pick = order[:k]
            p = fit_probe(ztr[:, pick], ytr, lm.name, layer, seed=seed)
            rows.append({"sae": name, "k": k, "latents": pick.tolist(), **p.evaluate(zte[:, pick], yte)})
    return rows
