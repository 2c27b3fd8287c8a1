"""Propensities under steering, for whole grids at once.

For item ``i``, propensity = log p(positive) − log p(negative) of the next token after ``ids`` (for sets of
words: log Σ p over each set); ``m_LD`` is the paper's logit difference (mean logit of the positive set −
mean logit of the negative set; for single tokens it equals the propensity). Every (vector, α, item) row runs
in padded batches with a per-row steering delta, not a Python loop over α.
"""

from __future__ import annotations

import torch

from ..models import LoadedModel
from .apply import steering
from .data import Item


def _forward_rows(lm: LoadedModel, layer: int, items: list[Item], rows: list[tuple[int, torch.Tensor | None]],
                  batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """rows: (item index, delta or None). Returns (propensity [R], m_LD [R])."""
    prop = torch.empty(len(rows))
    mld = torch.empty(len(rows))
    order = sorted(range(len(rows)), key=lambda r: len(items[rows[r][0]].ids))   # similar lengths together
    pad = lm.tokenizer.pad_token_id or 0
    d = lm.d_model
    for s in range(0, len(order), batch_size):
        chunk = order[s:s + batch_size]
        T = max(len(items[rows[r][0]].ids) for r in chunk)
        ids = torch.full((len(chunk), T), pad, dtype=torch.long)
        mask = torch.zeros((len(chunk), T), dtype=torch.long)
        delta = torch.zeros(len(chunk), d)
        for j, r in enumerate(chunk):
            it = items[rows[r][0]]
            ids[j, :len(it.ids)] = torch.tensor(it.ids)
            mask[j, :len(it.ids)] = 1
            if rows[r][1] is not None:
                delta[j] = rows[r][1]
        with torch.no_grad(), steering(lm, layer, delta):
            logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                              use_cache=False).logits
        last = logits[torch.arange(len(chunk)), mask.sum(1).to(logits.device) - 1].float().cpu()
        lp = torch.log_softmax(last, -1)
        for j, r in enumerate(chunk):
            it = items[rows[r][0]]
            prop[r] = torch.logsumexp(lp[j, it.positive], 0) - torch.logsumexp(lp[j, it.negative], 0)
            mld[r] = last[j, it.positive].mean() - last[j, it.negative].mean()
    return prop, mld


def propensity_grid(lm: LoadedModel, layer: int, items: list[Item], directions: torch.Tensor,
                    alphas: list[float], median_norm: float, batch_size: int = 32
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Propensities ``[V, A, N]`` (and m_LD) for unit ``directions [V, d]`` at ``α · median_norm``.

    The α = 0 rows are shared by all vectors and run once.
    """
    V, A, N = len(directions), len(alphas), len(items)
    rows, where = [], {}
    for i in range(N):
        where[(None, i)] = len(rows)
        rows.append((i, None))
    for v in range(V):
        for a, alpha in enumerate(alphas):
            if alpha != 0:
                for i in range(N):
                    where[(v, a, i)] = len(rows)
                    rows.append((i, alpha * median_norm * directions[v]))
    prop, mld = _forward_rows(lm, layer, items, rows, batch_size)
    out_p, out_m = torch.empty(V, A, N), torch.empty(V, A, N)
    for v in range(V):
        for a, alpha in enumerate(alphas):
            for i in range(N):
                r = where[(None, i)] if alpha == 0 else where[(v, a, i)]
                out_p[v, a, i], out_m[v, a, i] = prop[r], mld[r]
    return out_p, out_m


def propensity_loop(lm: LoadedModel, layer: int, items: list[Item], directions: torch.Tensor,
                    alphas: list[float], median_norm: float, batch_size: int = 32) -> torch.Tensor:
    """The same numbers with one steering context per (vector, α): the baseline the grid is measured against."""
    out = torch.empty(len(directions), len(alphas), len(items))
    for v in range(len(directions)):
        for a, alpha in enumerate(alphas):
            delta = alpha * median_norm * directions[v]
            rows = [(i, delta) for i in range(len(items))]
            out[v, a] = _forward_rows(lm, layer, items, rows, batch_size)[0]
    return out
