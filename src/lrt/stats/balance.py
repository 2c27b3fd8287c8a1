"""The mean over A/B items that a preference for one letter cannot move (used by CAA vectors and the evaluation)."""

from __future__ import annotations

import torch

MIN_GROUP = 3
"""A matching answer needs at least this many items to get its own weight (else the plain mean is taken)."""


class Balance:
    """How a mean over items is taken. A/B sets ask for letter A as the matching answer on some items and letter B on
    others, rarely half and half; a vector (or the unsteered model) that merely prefers one letter then moves the
    plain mean by (share of A − share of B) × that preference — forward on one item set, *backward* on another.
    With ``on``, each matching answer (the items' positive token: A or B, Yes or No) counts equally: the mean is the
    mean of the per-answer means, so a pure letter preference cancels. Used when there are ≥ 2 answers with at least
    :data:`MIN_GROUP` items each (free-text answers, word sets: the plain mean)."""

    def __init__(self, items=(), on: bool = True):
        keys = [tuple(getattr(it, "positive", None) or ()) for it in items]
        counts = {k: keys.count(k) for k in dict.fromkeys(keys)}
        self.on = on and len(counts) >= 2 and min(counts.values()) >= MIN_GROUP
        order = list(counts)
        self.labels = torch.tensor([order.index(k) for k in keys] if self.on else [0] * len(keys))
        self.groups = len(order) if self.on else 1
        self.counts = {str(list(k)): n for k, n in counts.items()}

    def mean(self, p: torch.Tensor) -> torch.Tensor:
        """The mean over the last dimension (items)."""
        if not self.on:
            return p.mean(-1)
        return self.resampled(p, torch.arange(p.shape[-1])[None])[..., 0]

    def resampled(self, p: torch.Tensor, idx: torch.Tensor) -> torch.Tensor:
        """``[..., B]``: the mean of ``p[..., idx[b]]`` for each resample ``b`` of ``idx [B, N]``."""
        if not self.on:
            return p[..., idx].mean(-1)
        onehot = torch.nn.functional.one_hot(self.labels[idx], self.groups).to(p.dtype)     # [B, N, G]
        sums = torch.einsum("...bn,bng->...bg", p[..., idx], onehot)
        counts = onehot.sum(1)                                                               # [B, G]
        present = (counts > 0).to(p.dtype)
        return (sums / counts.clamp_min(1) * present).sum(-1) / present.sum(-1)

    def record(self) -> dict:
        return {"balanced": self.on, "items_per_matching_answer": self.counts}
