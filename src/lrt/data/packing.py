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


class SplitBudget:
    """The token budget of a two-split read: each split's quota (``heldout_share`` of ``tokens`` for held-out
    documents, the rest for training), the tokens taken per split, and whether the corpus ran out first."""

    def __init__(self, tokens: int, heldout_share: float):
        held = round(tokens * heldout_share)
        self.quota = {True: held, False: tokens - held}
        self.taken = {False: 0, True: 0}
        self.exhausted = True

    def full(self, held: bool) -> bool:
        return self.taken[held] >= self.quota[held]

    def documents(self, docs: Iterable[dict], heldout: Callable[[dict], bool]) -> Iterator[tuple[dict, bool]]:
        """``(doc, held)`` for each document whose split still has room (others are skipped unread); stops once
        both splits are full (then ``exhausted`` is False)."""
        for doc in docs:
            held = bool(heldout(doc))
            if self.full(held):
                if self.full(not held):
                    self.exhausted = False
                    return
                continue
            yield doc, held


def pack_sequences(docs: Iterable[dict], tokenizer, context: int, batch_size: int, tokens: int,
                   heldout: Callable[[dict], bool], heldout_share: float = 0.0, name: str = "corpus",
                   tally: dict | None = None, max_doc_tokens: int = 0) -> Iterator[tuple[torch.Tensor, torch.Tensor, bool]]:
    """Pack documents into ``context``-token sequences, each of one split (``heldout(doc)``), and yield
    ``(input_ids [B, T], attention_mask [B, T], heldout)`` batches, ``tokens`` tokens in all.

    Each split has its quota — ``heldout_share`` of the budget for held-out documents, the rest for training —
    and documents are read until both are met (a document of a split whose quota is full is skipped untokenized),
    so a small budget still gets its held-out share. Documents are cut after ``max_doc_tokens`` (0: whole).
    ``tally``, if given, receives the tokens per split and per
    document source, and whether the corpus ran out.
    """
    budget = SplitBudget(tokens, heldout_share)
    quota, taken = budget.quota, budget.taken    # taken: tokens placed in sequences, per split
    buffers = {False: [], True: []}      # token buffer per split
    pending = {False: [], True: []}      # full sequences waiting for a batch
    by_source: dict[str, dict[str, int]] = {"train": {}, "heldout": {}}
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else 0

    for doc, held in budget.documents(docs, heldout):
        buf = buffers[held]
        ids = doc_token_ids(tokenizer, doc["text"])
        if max_doc_tokens:
            ids = ids[:max_doc_tokens]
        src = by_source["heldout" if held else "train"]
        src[doc.get("source", "?")] = src.get(doc.get("source", "?"), 0) + len(ids)
        buf.extend(ids)
        while len(buf) >= context and taken[held] < quota[held]:
            pending[held].append(buf[:context])
            del buf[:context]
            taken[held] += context
            if len(pending[held]) == batch_size:
                ids_t, mask = pad_right(pending[held], pad, context)
                pending[held] = []
                yield ids_t, mask, held
    # Flush what is waiting: full sequences always, partial ones (padded and masked) only when the corpus ran out.
    exhausted = budget.exhausted
    for held in (False, True):
        tail = buffers[held] if exhausted and len(buffers[held]) > 1 and taken[held] < quota[held] else []
        seqs = pending[held] + ([tail] if tail else [])
        taken[held] += len(tail)
        if seqs:
            ids_t, mask = pad_right(seqs, pad, context)
            yield ids_t, mask, held
    emitted = taken[False] + taken[True]
    if tally is not None:
        tally.update({"train_tokens": taken[False], "heldout_tokens": taken[True], "corpus_exhausted": exhausted,
                      "document_tokens_by_source": by_source})
    if exhausted and emitted < tokens:
        warnings.warn(f"{name} holds only {emitted:,} tokens, fewer than the {tokens:,} asked for; "
                      "using all of them", stacklevel=2)
