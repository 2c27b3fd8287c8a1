"""Paired harvest: stream a corpus through two models and yield aligned hidden-state rows.

Documents are tokenized once, packed into fixed-length sequences (each sequence holds documents of
one split only: ``train`` or ``heldout``, by a hash of the document id), and run through both models
batch by batch with an early stop after the deepest needed layer. Padding and, by default, position 0
of every sequence (the attention-sink token) are left out.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import Iterator

import torch
from tqdm.auto import tqdm

from .. import distributed
from ..data import packing
from ..data.chat import chat_documents, interleave
from ..data.corpus import iter_documents, sample_documents, split_of
from ..errors import NonFiniteActivationError
from ..models.load import LoadedModel
from .capture import keep_mask, run_with_capture
from .config import HarvestConfig


MAP_SPLIT_SALT = "lrt-map:"


@dataclass
class PairedBatch:
    """Aligned rows: ``source[layer]`` and ``target[layer]`` are ``[rows, d]`` float32 tensors."""

    source: dict[int, torch.Tensor]
    target: dict[int, torch.Tensor]
    heldout: bool
    index: int = 0
    """Position of the batch in the packed stream (the same on every rank; seeds per-batch randomness)."""


def pack_sequences(cfg: HarvestConfig, tokenizer, tally: dict | None = None
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """The harvest's batches: ``cfg.corpus`` packed into ``cfg.context``-token sequences, each of the map's train
    or held-out split (by a salted hash of the document id), each split filling its share of the budget."""
    docs = _documents(cfg, tokenizer)
    held = lambda doc: split_of(doc, cfg.heldout_percent, salt=MAP_SPLIT_SALT) == "heldout"  # noqa: E731
    return packing.pack_sequences(docs, tokenizer, cfg.context, cfg.batch_size, cfg.tokens, held,
                                  cfg.heldout_percent / 100, name=f"corpus {cfg.corpus!r}", tally=tally,
                                  max_doc_tokens=cfg.max_doc_tokens)


def _rows(h: torch.Tensor, keep, who: str, layer: int) -> torch.Tensor:
    """The kept rows of ``h``: a mask, or (aligned harvests) ``(row, column)`` index tensors."""
    keep = tuple(k.to(h.device) for k in keep) if isinstance(keep, tuple) else keep.to(h.device)
    rows = h[keep].float()                         # a device-mapped model's layers may live on several devices
    if not torch.isfinite(rows).all():
        raise NonFiniteActivationError(f"{who} layer {layer} produced non-finite hidden states (NaN/Inf); "
                                       "load it in float32, or use a layer before the overflow", option="dtype")
    return rows


def harvest_pairs(source: LoadedModel, target: LoadedModel, source_layers: list[int], target_layers: list[int],
                  cfg: HarvestConfig, tally: dict | None = None, split_ranks: bool = False, start: int = 0
                  ) -> Iterator[PairedBatch]:
    """Yield :class:`PairedBatch` rows for the requested layers of both models (``tally``: see
    :func:`lrt.data.packing.pack_sequences`). With ``split_ranks`` under ``torchrun``, this rank runs only the
    batches it owns (``index % world == rank``; every rank packs the whole stream, which is only tokenization), so
    the union over ranks is exactly the single-process harvest; the bar is rank 0's. ``start``: skip the first
    batches without running the models (resuming)."""
    world = distributed.world() if split_ranks else 1
    if cfg.align == "chars":
        yield from _aligned_pairs(source, target, source_layers, target_layers, cfg, tally, split_ranks, start)
        return
    with tqdm(total=cfg.tokens, unit="tok", unit_scale=True, desc="harvest",
              disable=not cfg.progress or not distributed.is_main()) as bar:
        for i, (ids, mask, held) in enumerate(pack_sequences(cfg, source.tokenizer, tally)):
            if i < start:                              # resuming: packed (for the tally), not run
                bar.update(min(int(mask.sum()), max(0, bar.total - bar.n)))
                continue
            if split_ranks and not distributed.mine(i):
                continue
            keep = keep_mask(mask, skip_first=not cfg.keep_first_token)
            out = []
            for lm, layers in ((source, source_layers), (target, target_layers)):
                hs = run_with_capture(lm, layers, ids.to(lm.device), mask.to(lm.device), early_stop=cfg.early_stop)
                k = keep.to(lm.device)
                out.append({layer: _rows(h, k, lm.name, layer) for layer, h in hs.items()})
            bar.update(min(int(mask.sum()) * world, max(0, bar.total - bar.n)))
            yield PairedBatch(source=out[0], target=out[1], heldout=held, index=i)


def _documents(cfg: HarvestConfig, tokenizer):
    docs = (sample_documents(cfg.corpus, cfg.seed, cfg.doc_split, cfg.doc_split_percent) if cfg.shuffle else
            iter_documents(cfg.corpus, cfg.doc_split, cfg.doc_split_percent))
    if cfg.mix:
        extra = [d for f in cfg.mix for d in chat_documents(f, tokenizer)]
        docs = interleave(docs, extra, cfg.mix_share, cfg.seed)
    return docs


def _aligned_pairs(source: LoadedModel, target: LoadedModel, source_layers: list[int], target_layers: list[int],
                   cfg: HarvestConfig, tally: dict | None, split_ranks: bool, start: int) -> Iterator[PairedBatch]:
    """:func:`harvest_pairs` for two tokenizers: each model runs on its own tokens of the same chunks, and the rows
    are the positions whose tokens end at the same character (:mod:`.aligned`)."""
    from .aligned import aligned_batches

    world = distributed.world() if split_ranks else 1
    held_of = lambda doc: split_of(doc, cfg.heldout_percent, salt=MAP_SPLIT_SALT) == "heldout"  # noqa: E731
    stream = aligned_batches(_documents(cfg, source.tokenizer), source.tokenizer, target.tokenizer, cfg.context,
                             cfg.batch_size, cfg.tokens, held_of, cfg.heldout_percent / 100, cfg.max_doc_tokens,
                             tally, skip_first=not cfg.keep_first_token)
    with tqdm(total=cfg.tokens, unit="tok", unit_scale=True, desc="harvest (aligned)",
              disable=not cfg.progress or not distributed.is_main()) as bar:
        for i, (si, sm, ti, tm, ps, pt, held) in enumerate(stream):
            bar.update(min(int(sm.sum()) * (world if i >= start else 1), max(0, bar.total - bar.n)))
            if i < start or (split_ranks and not distributed.mine(i)):
                continue
            out = []
            for lm, layers, ids, mask, pos in ((source, source_layers, si, sm, ps), (target, target_layers, ti, tm, pt)):
                hs = run_with_capture(lm, layers, ids.to(lm.device), mask.to(lm.device), early_stop=cfg.early_stop)
                out.append({layer: _rows(h, pos, lm.name, layer) for layer, h in hs.items()})
            yield PairedBatch(source=out[0], target=out[1], heldout=held, index=i)


@torch.no_grad()
def stream_rows(lm: LoadedModel, layer: int, cfg: HarvestConfig, tally: dict | None = None, start: int = 0,
                split_ranks: bool = False) -> Iterator[tuple[torch.Tensor | None, bool]]:
    """One model's states at ``layer`` on the packed corpus: ``(rows [n, d] float32, heldout)`` per batch, with
    the same packing, split and position rule as the paired harvest (for SAEs and probes). ``start``: skip the
    first batches without running the model (resuming). ``split_ranks`` (torchrun): other ranks' batches are
    yielded as ``(None, heldout)`` without running the model, so every rank counts the same stream positions."""
    with tqdm(total=cfg.tokens, unit="tok", unit_scale=True, desc="activations",
              disable=not cfg.progress or not distributed.is_main()) as bar:
        for i, (ids, mask, held) in enumerate(pack_sequences(cfg, lm.tokenizer, tally)):
            if i < start or (split_ranks and not distributed.mine(i)):
                bar.update(min(int(mask.sum()), max(0, bar.total - bar.n)))
                if i >= start:
                    yield None, held
                continue
            keep = keep_mask(mask, skip_first=not cfg.keep_first_token).to(lm.device)
            h = run_with_capture(lm, [layer], ids.to(lm.device), mask.to(lm.device), early_stop=cfg.early_stop)[layer]
            bar.update(min(int(mask.sum()), max(0, bar.total - bar.n)))
            yield _rows(h, keep, lm.name, layer), held


def read_ahead_heldout(stream, n: int, cap: int):
    """``(stream', rows)``: the first ``n`` held-out rows of ``stream`` (None if it has none), read ahead before
    training so that every metric row is measured on the same set; ``stream'`` yields every item again, the ones read
    ahead from memory (at most ``cap`` training rows are held; past that the set is what arrived by then)."""
    ahead, held, have, kept = [], [], 0, 0
    for item in stream:
        ahead.append(item)
        rows, is_held = item
        if rows is not None and is_held:
            held.append(rows)
            have += len(rows)
        elif rows is not None:
            kept += len(rows)
        if have >= n or kept >= cap:
            break
    return itertools.chain(ahead, stream), (torch.cat(held)[:n] if held else None)
