"""Token sequences: right-padding, and packing documents into fixed-length sequences of one split each."""

from __future__ import annotations

import warnings
from typing import Callable, Iterable, Iterator

import torch


def pad_right(seqs: list[list[int]], pad: int, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` ``[len(seqs), length or longest]``."""
    T = length or max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


def doc_token_ids(tokenizer, text: str) -> list[int]:
    ids = tokenizer(text, add_special_tokens=True, verbose=False)["input_ids"]   # long docs are packed
    eos = tokenizer.eos_token_id
    if eos is not None and (not ids or ids[-1] != eos):
        ids = ids + [eos]
    return ids


def pack_sequences(docs: Iterable[dict], tokenizer, context: int, batch_size: int, tokens: int,
                   heldout: Callable[[dict], bool], name: str = "corpus"
                   ) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Pack documents into ``context``-token sequences, each of one split (``heldout(doc)``), and yield
    ``(input_ids [B, T], attention_mask [B, T], heldout)`` batches, ``tokens`` tokens in all."""
    buffers = {False: [], True: []}      # token buffer per split
    pending = {False: [], True: []}      # full sequences waiting for a batch
    emitted = 0
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    exhausted = True
    for doc in docs:
        held = bool(heldout(doc))
        buf = buffers[held]
        buf.extend(doc_token_ids(tokenizer, doc["text"]))
        while len(buf) >= context and emitted < tokens:
            pending[held].append(buf[:context])
            del buf[:context]
            if len(pending[held]) == batch_size:
                ids, mask = pad_right(pending[held], pad, context)
                pending[held] = []
                yield ids, mask, held
                emitted += int(mask.sum())
        if emitted >= tokens:
            exhausted = False
            break
    # Flush what is waiting: full sequences always (so a small budget still gets held-out rows),
    # partial ones (padded and masked) only when the corpus ran out.
    for held in (False, True):
        seqs = pending[held] + ([buffers[held]] if exhausted and len(buffers[held]) > 1 else [])
        if seqs:
            ids, mask = pad_right(seqs, pad, context)
            yield ids, mask, held
            emitted += int(mask.sum())
    if exhausted and emitted < tokens:
        warnings.warn(f"{name} holds only {emitted:,} tokens, fewer than the {tokens:,} asked for; "
                      "using all of them", stacklevel=2)
