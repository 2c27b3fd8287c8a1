"""Aligned harvest for two tokenizers: pair the positions where both models have read exactly the same text.

Two models of different families cut the same text into different tokens, so token ``i`` of one is not token
``i`` of the other. But wherever both tokenizers put a token boundary at the same character — the end of a word,
of most sub-words, of punctuation — both models' states at that token have seen exactly ``text[:end]``. The
aligned harvest tokenizes each chunk of text with both tokenizers (offset mappings of fast tokenizers, GGUF-loaded
ones too), keeps the positions whose tokens *end at the same character* (the last token ending there, so a
character split into several byte tokens counts once it is complete; special tokens and position 0 never), runs
each model on its own tokens and yields the two models' states at those positions as paired rows: everything
downstream (moments, ridge, held-out metrics, shuffled control, massive-norm cut, sweep, torchrun) takes them
unchanged.

Text is cut into chunks by the *source* tokenizer (``context`` source tokens, at most ``max_doc_tokens`` of a
document), each chunk of one split of the map's document split, and the token budget counts source tokens; the
tally records, per split and document source, the source and target tokens and the aligned positions.
"""

from __future__ import annotations

import warnings
from typing import Iterable, Iterator

import torch

from ..data.packing import SplitBudget, pad_right


def token_ends(tokenizer, text: str) -> tuple[list[int], list[int]]:
    """``(ids, ends)``: the tokens of ``text`` (with the tokenizer's own special tokens) and the character each
    ends at (exclusive), ``-1`` for a token that covers no character (special tokens)."""
    enc = tokenizer(text, add_special_tokens=True, return_offsets_mapping=True, verbose=False)
    return list(enc["input_ids"]), [e if e > s else -1 for s, e in enc["offset_mapping"]]


def aligned_positions(ends_a: list[int], ends_b: list[int], skip_first: bool = True) -> tuple[list[int], list[int]]:
    """Positions of two tokenizations of one text whose tokens end at the same character: for each character
    boundary both share, the last token of each ending there (in text order). Position 0 is left out with
    ``skip_first`` (the attention sink)."""
    def last(ends):
        out = {}
        for i, e in enumerate(ends):
            if e >= 0 and (i > 0 or not skip_first):
                out[e] = i
        return out

    la, lb = last(ends_a), last(ends_b)
    common = sorted(set(la) & set(lb))
    return [la[e] for e in common], [lb[e] for e in common]


def _chunks(text: str, tokenizer, context: int, max_doc_tokens: int) -> Iterator[str]:
    """``text`` cut into pieces of at most ``context`` source tokens (each piece ends at a source token's end)."""
    enc = tokenizer(text, add_special_tokens=False, return_offsets_mapping=True, verbose=False)
    offs = [(s, e) for s, e in enc["offset_mapping"] if e > s]
    if max_doc_tokens:
        offs = offs[:max_doc_tokens]
    width = max(2, context - 2)            # room for the special tokens either tokenizer adds
    for k in range(0, len(offs), width):
        piece = offs[k:k + width]
        start = 0 if k == 0 else offs[k - 1][1]
        yield text[start:piece[-1][1]]


def aligned_batches(docs: Iterable[dict], source_tok, target_tok, context: int, batch_size: int, tokens: int,
                    heldout, heldout_share: float, max_doc_tokens: int = 0, tally: dict | None = None,
                    skip_first: bool = True) -> Iterator[tuple]:
    """``(source ids [B, Ts], source mask, target ids [B, Tt], target mask, source positions, target positions,
    heldout)`` batches of chunks of one split each, ``tokens`` source tokens in all (each split its quota, as
    :func:`lrt.data.packing.pack_sequences`); positions are ``(row, column)`` index tensors into each model's
    batch, row-aligned with each other."""
    budget = SplitBudget(tokens, heldout_share)
    quota, taken = budget.quota, budget.taken
    pending: dict[bool, list] = {False: [], True: []}
    stats: dict[str, dict[str, dict[str, int]]] = {"train": {}, "heldout": {}}
    pads = (source_tok.pad_token_id or 0, target_tok.pad_token_id or 0)

    def flush(held):
        rows = pending[held]
        pending[held] = []
        si, sm = pad_right([r[0] for r in rows], pads[0])
        ti, tm = pad_right([r[1] for r in rows], pads[1])
        ps = (torch.tensor([j for j, r in enumerate(rows) for _ in r[2]]), torch.tensor([p for r in rows for p in r[2]]))
        pt = (torch.tensor([j for j, r in enumerate(rows) for _ in r[3]]), torch.tensor([p for r in rows for p in r[3]]))
        return si, sm, ti, tm, ps, pt, held

    for doc, held in budget.documents(docs, heldout):
        for chunk in _chunks(doc["text"], source_tok, context, max_doc_tokens):
            if taken[held] >= quota[held] or not chunk.strip():
                break
            s_ids, s_ends = token_ends(source_tok, chunk)
            t_ids, t_ends = token_ends(target_tok, chunk)
            s_ids, s_ends, t_ids, t_ends = s_ids[:context], s_ends[:context], t_ids[:context], t_ends[:context]
            ps, pt = aligned_positions(s_ends, t_ends, skip_first)
            src = stats["heldout" if held else "train"].setdefault(doc.get("source", "?"),
                                                                    {"source_tokens": 0, "target_tokens": 0,
                                                                     "aligned": 0})
            src["source_tokens"] += len(s_ids)
            src["target_tokens"] += len(t_ids)
            src["aligned"] += len(ps)
            taken[held] += len(s_ids)
            if ps:
                pending[held].append((s_ids, t_ids, ps, pt))
            if len(pending[held]) == batch_size:
                yield flush(held)
    for held in (False, True):
        if pending[held]:
            yield flush(held)
    exhausted = budget.exhausted
    if tally is not None:
        by = {split: {k: v["source_tokens"] for k, v in d.items()} for split, d in stats.items()}
        frac = {split: {k: round(v["aligned"] / max(1, v["source_tokens"]), 4) for k, v in d.items()}
                for split, d in stats.items()}
        tally.update({"train_tokens": taken[False], "heldout_tokens": taken[True], "document_tokens_by_source": by,
                      "corpus_exhausted": exhausted,
                      "alignment": {"by_source": stats, "aligned_fraction_of_source_tokens": frac,
                                    "aligned_rows": sum(v["aligned"] for d in stats.values() for v in d.values())}})
    if exhausted and taken[False] + taken[True] < tokens:
        warnings.warn(f"the corpus holds only {taken[False] + taken[True]:,} source tokens, fewer than the {tokens:,} "
                      "asked for; using all of them", stacklevel=2)
