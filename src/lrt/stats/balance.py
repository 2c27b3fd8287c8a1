"""The mean over A/B items that a preference for one letter cannot move (used by CAA vectors and the evaluation)."""

from __future__ import annotations

import torch

MIN_GROUP = 3
"""Each direction of an answer pair needs at least this many items for the pair to count (else it is left out)."""


def answer_key(item) -> tuple[tuple[int, ...], tuple[int, ...]]:
    """(matching answer tokens, other answer tokens) of an item: ``((A,), (B,))`` for "A matches, B does not"."""
    return tuple(getattr(item, "positive", None) or ()), tuple(getattr(item, "negative", None) or ())


def _answer_counts(items) -> tuple[list, dict]:
    """Each item's :func:`answer_key`, and how many items have each key (in order of first appearance)."""
    keys = [answer_key(it) for it in items]
    return keys, {k: keys.count(k) for k in dict.fromkeys(keys)}


class Balance:
    """How a mean over items is taken. A/B sets ask for letter A as the matching answer on some items and letter B on
    others, rarely half and half; a vector (or the unsteered model) that merely prefers one letter then moves the
    plain mean by (share of A − share of B) × that preference — forward on one item set, *backward* on another.

    With ``on``, items are grouped by their (matching, other) answer pair, and only *mirrored* groups count: "A
    against B" together with "B against A", each direction with at least :data:`MIN_GROUP` items. Each direction's
    mean weighs alike, so a preference for any one answer cancels exactly. An item whose pair has no mirror (a
    third option, "(C) against (A)", on 3 of 60 pairs) is left out (recorded): its difference is mostly the letter,
    "C rather than A", and weighing its group like the others made a survival-instinct CAA vector a pure "say C"
    direction (15× the behaviour's norm) that steered A-matching items backwards. No mirrored pair (free-text
    answers, word sets): the plain mean over all items."""

    def __init__(self, items=(), on: bool = True):
        keys, counts = _answer_counts(items)
        kept = [k for k in counts if counts[k] >= MIN_GROUP and counts.get((k[1], k[0]), 0) >= MIN_GROUP
                and k[0] != k[1]]
        self.on = on and len(kept) >= 2
        self.groups = len(kept) if self.on else 1
        self.labels = torch.tensor([kept.index(k) if k in kept else self.groups for k in keys] if self.on
                                   else [0] * len(keys), dtype=torch.long)
        self.counts = {f"{list(p)}|{list(n)}": c for (p, n), c in counts.items()}
        self.left_out = sum(c for k, c in counts.items() if k not in kept) if self.on else 0

    def mean(self, p: torch.Tensor) -> torch.Tensor:
        """The mean over the last dimension (items)."""
        if not self.on:
            return p.mean(-1)
        return self.resampled(p, torch.arange(p.shape[-1])[None])[..., 0]

    def resampled(self, p: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``[..., B]``: the mean of ``p[..., idx[b]]`` for each resample ``b`` of ``idx [B, N]``."""
        if not self.on:
            return p[..., idx].mean(-1)
        onehot = torch.nn.functional.one_hot(self.labels[idx], self.groups + 1)[..., :self.groups].to(p.dtype)
        sums = torch.einsum("...bn,bng->...bg", p[..., idx], onehot)
        counts = onehot.sum(1)                                                               # [B, G]
        present = (counts > 0).to(p.dtype)
        return (sums / counts.clamp_min(1) * present).sum(-1) / present.sum(-1).clamp_min(1)

    def record(self) -> dict:
        return {"balanced": self.on, "items_per_answer_pair": self.counts, "left_out": self.left_out,
                "rule": "mirrored answer pairs, each direction alike" if self.on else "plain mean"}


def balanced_pick(items: list, n: int) -> list:
    """``n`` items, in their order, taken alternately from the two directions of the commonest mirrored answer pair
    ("A against B", "B against A") so that the balanced mean can use all of them; the plain first ``n`` where the
    items have no mirrored pair. (The next 12 unused pairs of survival-instinct's generate set are 11 A-matching
    and 1 B-matching: the balanced mean then falls back to the plain one and a letter preference looks like
    steering.)"""
    return [items[i] for i in balanced_pick_indices(items, n)]


def balanced_pick_indices(items: list, n: int) -> list[int]:
    """The positions in ``items`` (ascending) of :func:`balanced_pick`'s choice."""
    keys, counts = _answer_counts(items)
    pairs = [k for k in counts if k[0] != k[1] and (k[1], k[0]) in counts]
    if not pairs:
        return list(range(min(n, len(items))))
    top = max(pairs, key=lambda k: (min(counts[k], counts[(k[1], k[0])]), counts[k] + counts[(k[1], k[0])]))
    queues = [[i for i, k in enumerate(keys) if k == d] for d in (top, (top[1], top[0]))]
    picked: list[int] = []
    while len(picked) < n and any(queues):
        for q in queues:
            if q and len(picked) < n:
                picked.append(q.pop(0))
    return sorted(picked)
