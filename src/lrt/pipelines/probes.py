"""Probes across models: one labelled task, the small model's probe carried to the large one both ways, against
a probe trained natively on the large model, a probe on a random projection of equal rank, and chance."""

from __future__ import annotations

import torch

from ..maps.affine import AffineMap
from ..models.load import LoadedModel
from ..models.tokenizer_check import same_tokenizer
from ..probes.features import pooled_codes, pooled_states
from ..probes.probe import fit_probe, probe_down, probe_up


def compare_probes(small: LoadedModel, large: LoadedModel, up: AffineMap, down: AffineMap | None, docs: list[dict],
                   max_tokens: int = 256, seed: int = 0, progress: bool = False) -> dict:
    """Rows of ``{probe, model, accuracy, auroc}`` on the test split of ``docs``
    (:func:`lrt.data.labels.labelled_documents`), and the split sizes. Across two tokenizers both models pool the
    same characters (:func:`same_span` of the small model's last ``max_tokens`` tokens)."""
    tr = [d for d in docs if d["split"] == "train"]
    te = [d for d in docs if d["split"] == "test"]
    ytr, yte = [d["label"] for d in tr], [d["label"] for d in te]
    ls, lt = small.layer_index(up.source_layer), large.layer_index(up.target_layer)
    two = not same_tokenizer(small.tokenizer, large.tokenizer)
    texts = [[d["text"] for d in part] for part in (tr, te)]
    if two:                   # the same characters on both sides, not each tokenizer's own last max_tokens tokens
        texts = [[same_span(small.tokenizer, t, max_tokens) for t in part] for part in texts]
    limit = 1 << 30 if two else max_tokens           # a cut span is pooled whole, in either model's tokens
    feats = {}
    for name, lm, layer in (("small", small, ls), ("large", large, lt)):
        feats[name] = [pooled_states(lm, layer, part, limit, progress=progress) for part in texts]
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
    return {"rows": rows, "classes": own.classes, "split": counts, "tokenizers": "two" if two else "one",
            "l2": {"small": own.meta["l2"], "native": native.meta["l2"]}}


def same_span(tokenizer, text: str, max_tokens: int) -> str:
    """The end of ``text`` that ``tokenizer``'s last ``max_tokens`` tokens cover, cut at a token boundary: a probe
    across two tokenizers pools both models over exactly these characters."""
    ends = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)["offset_mapping"]
    if len(ends) <= max_tokens:
        return text
    return text[ends[-max_tokens - 1][1]:]


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
