"""Steering vectors: CAA mean difference (or PCA of differences) at one layer, as a saved artifact.

The scale of a layer is its *median* token norm (robust to massive-activation tokens); it is measured
on the same forward passes that compute the vector and stored with it, so ``α`` (a fraction of that
median) means the same on a small and a large model.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import torch

from ..data.contrasts import Item, TextContrast
from ..errors import DatasetError, DimensionMismatchError
from ..harvest.capture import capture_batches, keep_mask
from ..io.artifacts import load_artifact, save_artifact, split_meta
from ..models.layers import LayerSpec, layer_name
from ..models.load import LoadedModel
from ..models.tokenizer_check import tokenizer_fingerprint
from ..stats.balance import Balance, split_half_cos
from ..stats.samples import NormTracker
from .config import METHODS, VectorConfig


@dataclass
class SteeringVector:
    vector: torch.Tensor
    model: str
    layer: int | str
    method: str
    n_pairs: int
    meta: dict = field(default_factory=dict)

    @property
    def norm(self) -> float:
        return float(self.vector.norm())

    @property
    def median_norm(self) -> float:
        """Median token norm of the layer the vector lives in (the unit of α)."""
        return float(self.meta["layer_median_norm"])

    def unit(self) -> torch.Tensor:
        return self.vector / self.vector.norm().clamp_min(1e-12)

    def check_model(self, lm: LoadedModel) -> None:
        if lm.d_model != self.vector.shape[-1]:
            raise DimensionMismatchError(f"vector from {self.model} has width {self.vector.shape[-1]} but {lm.name} has"
                                         f" width {lm.d_model}; transfer it with a map first")

    def save(self, directory: str | os.PathLike) -> None:
        save_artifact(directory, "vector", "steering_vector", {"vector": self.vector.float()},
                      {"model": self.model, "layer": self.layer, "method": self.method, "n_pairs": self.n_pairs,
                       "norm": self.norm, "dim": int(self.vector.shape[-1]), **self.meta})

    @classmethod
    def load(cls, directory: str | os.PathLike) -> "SteeringVector":
        tensors, meta = load_artifact(directory, "vector", "steering_vector")
        core, rest = split_meta(meta, ("model", "layer", "method", "n_pairs"), ("norm", "dim"))
        return cls(vector=tensors["vector"], meta=rest, **core)


def _norms(h: torch.Tensor, mask: torch.Tensor, tracker: NormTracker) -> None:
    tracker.update(h[keep_mask(mask)].norm(dim=-1))


def _finish(diffs: torch.Tensor, method: str, balance=None) -> torch.Tensor:
    mean = balance.mean(diffs.T) if balance is not None else diffs.mean(0)
    if method == "mean":
        return mean
    if method == "pca":   # first principal direction of the differences, sign and length of the mean
        _, _, vh = torch.linalg.svd(diffs.double(), full_matrices=False)
        d = vh[0].float()
        proj = mean @ d
        return d * proj
    raise DatasetError(f"unknown method {method!r}; use one of {', '.join(METHODS)}")


def contrast_states(lm: LoadedModel, items: list[Item], layer: LayerSpec, batch_size: int = 16,
                    share_prefix: bool = True, before=None, desc: str | None = None):
    """The layer's states at both answers of every pair, and the kept norms (:func:`continuation_states`).
    ``before``: the states of ``items``' first pairs, computed earlier: only the rest run, and the result is the
    same as computing all of them (each pair's states depend on that pair alone; the norms keep their order).
    ``desc``: a progress bar over the pairs still to run, so named."""
    from ..harvest.prefix import ContinuationStates, continuation_states

    k = 0 if before is None else len(before.states)
    if k > len(items):
        raise ValueError(f"before holds {k} pairs, more than the {len(items)} given")
    if k == len(items):
        return before
    rest = items[k:]
    got = continuation_states(lm, lm.layer_index(layer), [it.ids for it in rest],
                              [it.positive[:1] + it.negative[:1] for it in rest], batch_size, share_prefix,
                              desc=desc)
    if before is None:
        return got
    return ContinuationStates(torch.cat([before.states, got.states]),
                              [a + b for a, b in zip(before.kept_norms, got.kept_norms)], before.shared and got.shared)


def contrast_vector(lm: LoadedModel, items: list[Item], layer: LayerSpec, method: str = "mean",
                    batch_size: int = 16, name: str = "contrast", share_prefix: bool = True,
                    balance: bool = True, states=None) -> SteeringVector:
    """CAA: mean over pairs of h(answer token | positive) − h(answer token | negative).

    With ``balance`` (default) the mean gives each matching answer the same weight (the mean of the A-matching
    pairs' mean and the B-matching pairs' mean, :class:`lrt.stats.balance.Balance`): on a set with more A-matching
    than B-matching pairs the plain mean also carries "say A rather than B", which steers a test set with the
    other balance *backwards*. Pairs whose answer pair has no mirror ("(C) against (A)") are left out: their
    difference is mostly "say C rather than A". The weights are recorded in the vector (``answer_balance``), and
    how stable the mean is (``split_half_cos``: :func:`lrt.stats.balance.split_half_cos`).

    With ``share_prefix`` each prompt runs once (KV cache) and both answers continue it
    (:func:`lrt.harvest.prefix.continuation_states`); without it, or where the architecture does not allow it,
    each ``prompt + answer`` runs in full. Same vector either way, and the same layer median norm: the norm
    tracker gets the norms of both full sequences (each prompt token twice), in the order of two full passes.
    ``states``: :func:`contrast_states` of ``items`` computed already (a study growing its pairs runs each pair
    once).
    """
    if len(items) < 1:
        raise DatasetError("no contrast pairs to compute a vector from")
    li = lm.layer_index(layer)
    got = states if states is not None else contrast_states(lm, items, layer, batch_size, share_prefix)
    if len(got.states) != len(items):
        raise ValueError(f"states of {len(got.states)} pairs given for {len(items)} items")
    tracker = NormTracker()
    for seq_norms in got.kept_norms:          # positives, then negatives, in batches of batch_size sequences
        for s in range(0, len(seq_norms), batch_size):
            tracker.update(torch.cat(seq_norms[s:s + batch_size]))
    diffs = got.states[:, 0] - got.states[:, 1]
    bal = Balance(items, balance)
    return SteeringVector(vector=_finish(diffs, method, bal), model=lm.name, layer=layer_name(li),
                          method=method, n_pairs=len(items),
                          meta={"concept": name, "position": "answer", "layer_median_norm": tracker.median(),
                                "answer_balance": bal.record(),
                                "split_half_cos": split_half_cos(diffs, bal.cells) if method == "mean" else None,
                                "origin": "native", "model_fingerprint": lm.fingerprint,
                                "tokenizer": tokenizer_fingerprint(lm.tokenizer)})


def _truncate(tokenizer, text: str, max_tokens: int, keep: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]
    if len(ids) <= max_tokens:
        return ids
    bos = tokenizer.bos_token_id
    lead = [bos] if bos is not None and ids[0] == bos else []
    body = ids[len(lead):]
    body = body[:max_tokens - len(lead)] if keep == "first" else body[-(max_tokens - len(lead)):]
    return lead + body


def text_vector(lm: LoadedModel, texts: TextContrast, layer: LayerSpec, position: str = "mean",
                max_tokens: int = 256, batch_size: int = 8, keep: str = "last", progress: bool = False
                ) -> SteeringVector:
    """Contrast of means of two text sets; ``position`` = "mean" (over tokens) or "last" (last token).

    Texts longer than ``max_tokens`` keep their ``last`` tokens (default: reviews give their verdict at the
    end; their openings are mostly plot summary) or their ``first``.
    """
    if not texts.positive or not texts.negative:
        raise DatasetError(f"text contrast {texts.name!r} needs texts on both sides "
                           f"(has {len(texts.positive)} positive, {len(texts.negative)} negative)")
    if position not in ("mean", "last"):
        raise DatasetError(f"position must be 'mean' or 'last', got {position!r}")
    li = lm.layer_index(layer)
    tok = lm.tokenizer
    seqs = [_truncate(tok, t, max_tokens, keep) for t in texts.positive + texts.negative]
    feats, tracker = [], NormTracker()
    for hs, mask in capture_batches(lm, seqs, [li], batch_size, progress, desc=f"vector on {lm.name}"):
        h = hs[li]
        _norms(h, mask, tracker)
        if position == "last":
            feats.append(h[torch.arange(len(h)), mask.sum(1) - 1])
        else:
            m = keep_mask(mask).float()   # the first token is an attention sink on many models
            feats.append((h * m[..., None]).sum(1) / m.sum(1, keepdim=True).clamp_min(1))
    f = torch.cat(feats)
    npos = len(texts.positive)
    v = f[:npos].mean(0) - f[npos:].mean(0)
    # each side one cell (negatives' rows negated): the balanced mean is v / 2, each side's texts dealt to two halves
    sides = torch.cat([torch.zeros(npos, dtype=torch.long), torch.ones(len(f) - npos, dtype=torch.long)])
    half = split_half_cos(torch.cat([f[:npos], -f[npos:]]), sides)
    return SteeringVector(vector=v, model=lm.name, layer=layer_name(li), method="mean",
                          n_pairs=min(npos, len(texts.negative)),
                          meta={"concept": texts.name, "position": position, "keep": keep, "max_tokens": max_tokens,
                                "layer_median_norm": tracker.median(),
                                "n_positive": npos, "n_negative": len(texts.negative), "split_half_cos": half,
                                "origin": "native",
                                "model_fingerprint": lm.fingerprint,
                                "tokenizer": tokenizer_fingerprint(lm.tokenizer)})


def vector_data(cfg: VectorConfig, tokenizer) -> list[Item] | TextContrast:
    """The examples a vector is computed from: tokenized A/B items, or the concept's two text sets."""
    from ..data.concepts import concept_texts
    from ..data.contrasts import contrast_items, load_contrasts
    from ..zoo import registry

    if cfg.contrast:
        return contrast_items(tokenizer, load_contrasts(cfg.contrast, cfg.max_pairs), cfg.chat)
    corpus = cfg.concept_corpus or str(registry.review_sample())
    return concept_texts(cfg.concept, corpus, split=cfg.split, limit=cfg.max_pairs, seed=cfg.seed)


def compute_vector(lm: LoadedModel, layer: LayerSpec, cfg: VectorConfig,
                   data: list[Item] | TextContrast | None = None) -> SteeringVector:
    """The vector ``cfg`` describes, on ``lm`` at ``layer`` (``data`` from :func:`vector_data`, to share it)."""
    from pathlib import Path

    from ..data.provenance import data_record

    data = vector_data(cfg, lm.tokenizer) if data is None else data
    if cfg.contrast:
        v = contrast_vector(lm, data, layer, cfg.vector_method, name=Path(cfg.contrast).stem, balance=cfg.balance)
    else:
        v = text_vector(lm, data, layer, cfg.position, progress=cfg.progress)
    v.meta["data"] = data_record(data, cfg.contrast)
    return v
