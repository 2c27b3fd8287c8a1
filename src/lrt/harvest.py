"""Paired harvest: stream a corpus through two models and yield aligned hidden-state rows.

Documents are tokenized once, packed into fixed-length sequences (each sequence holds documents of
one split only: ``train`` or ``heldout``, by a hash of the document id), and run through both models
batch by batch with an early stop after the deepest needed layer. Padding and, by default, position 0
of every sequence (the attention-sink token) are left out.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Iterator

import torch
from tqdm.auto import tqdm

from .corpus import iter_documents, split_of
from .errors import NonFiniteActivationError
from .hooks import pad_right, run_with_capture
from .models import LoadedModel


MAP_SPLIT_SALT = "lrt-map:"


@dataclass
class HarvestConfig:
    corpus: str
    tokens: int = 1_000_000          # tokens to run through the models (both splits together)
    context: int = 256               # packed sequence length
    batch_size: int = 8
    heldout_percent: float = 10.0    # share of documents kept out of the fit, for held-out metrics
    skip_first: bool = True          # leave out position 0 of each sequence (attention sink)
    doc_split: str | None = None     # restrict to the corpus' own train/heldout split (e.g. zoo held-out text)
    doc_split_percent: float = 5.0
    early_stop: bool = True
    progress: bool = True


@dataclass
class PairedBatch:
    """Aligned rows: ``source[layer]`` and ``target[layer]`` are ``[rows, d]`` float32 tensors."""

    source: dict[int, torch.Tensor]
    target: dict[int, torch.Tensor]
    heldout: bool


def _doc_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]   # long docs are packed
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids = ids + [eos]
    return ids


def pack_sequences(cfg: HarvestConfig, tokenizer) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Yield ``(input_ids [B, T], attention_mask [B, T], heldout)`` batches, ``cfg.tokens`` tokens in all."""
    buffers = {False: [], True: []}      # token buffer per split
    pending = {False: [], True: []}      # full sequences waiting for a batch
    emitted = 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    exhausted = True
    for doc in iter_documents(cfg.corpus, cfg.doc_split, cfg.doc_split_percent):
        held = split_of(doc, cfg.heldout_percent, salt=MAP_SPLIT_SALT) == "heldout"
        buf = buffers[held]
        buf.extend(_doc_ids(tokenizer, doc["text"]))
        while len(buf) >= cfg.context and emitted < cfg.tokens:
            pending[held].append(buf[:cfg.context])
            del buf[:cfg.context]
            if len(pending[held]) == cfg.batch_size:
                ids, mask = pad_right(pending[held], pad, cfg.context)
                pending[held] = []
                yield ids, mask, held
                emitted += int(mask.sum())
        if emitted >= cfg.tokens:
            exhausted = False
            break
    # Flush what is waiting: full sequences always (so a small budget still gets held-out rows),
    # partial ones (padded and masked) only when the corpus ran out.
    for held in (False, True):
        seqs = pending[held] + ([buffers[held]] if exhausted and len(buffers[held]) > 1 else [])
        if seqs:
            ids, mask = pad_right(seqs, pad, cfg.context)
            yield ids, mask, held
            emitted += int(mask.sum())
    if exhausted and emitted < cfg.tokens:
        warnings.warn(f"corpus {cfg.corpus!r} holds only {emitted:,} tokens, fewer than the {cfg.tokens:,} asked for; "
                      "using all of them", stacklevel=2)


def _rows(h: torch.Tensor, keep: torch.Tensor, who: str, layer: int) -> torch.Tensor:
    rows = h[keep].float()
    if not torch.isfinite(rows).all():
        raise NonFiniteActivationError(f"{who} layer {layer} produced non-finite hidden states (NaN/Inf); "
                                       "try --dtype float32, or a layer before the overflow")
    return rows


def harvest_pairs(source: LoadedModel, target: LoadedModel, source_layers: list[int], target_layers: list[int],
                  cfg: HarvestConfig) -> Iterator[PairedBatch]:
    """Yield :class:`PairedBatch` rows for the requested layers of both models."""
    bar = tqdm(total=cfg.tokens, unit="tok", unit_scale=True, desc="harvest", disable=not cfg.progress)
    for ids, mask, held in pack_sequences(cfg, source.tokenizer):
        keep = mask.bool()
        if cfg.skip_first:
            keep[:, 0] = False
        out = []
        for lm, layers in ((source, source_layers), (target, target_layers)):
            hs = run_with_capture(lm, layers, ids.to(lm.device), mask.to(lm.device), early_stop=cfg.early_stop)
            k = keep.to(lm.device)
            out.append({layer: _rows(h, k, lm.name, layer) for layer, h in hs.items()})
        bar.update(int(mask.sum()))
        yield PairedBatch(source=out[0], target=out[1], heldout=held)
    bar.close()
