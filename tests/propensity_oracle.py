"""The test oracle of the propensity grid: the plain per-(vector, α) loop, one steering context each, full
forward passes, no shared prefix. The library's grid must equal it (tests) and beat it (benchmarks)."""

from __future__ import annotations

import torch

from lrt.data.contrasts import Item
from lrt.evaluate.propensity import _pad, _score
from lrt.models.load import LoadedModel
from lrt.steering.apply import steering


def propensity_loop(lm: LoadedModel, layer: int, items: list[Item], directions: torch.Tensor,
                    alphas: list[float], median_norm: float, batch_size: int = 64) -> torch.Tensor:
    """The baseline the grid is measured against: one steering context per (vector, α), a plain full forward
    of all items in each (batched over items, no shared prefix, logits at every position)."""
    out = torch.empty(len(directions), len(alphas), len(items))
    pad = lm.tokenizer.pad_token_id or 0
    for v in range(len(directions)):
        for a, alpha in enumerate(alphas):
            delta = alpha * median_norm * directions[v]
            for s in range(0, len(items), batch_size):
                idx = list(range(s, min(len(items), s + batch_size)))
                ids, mask = _pad(items, idx, pad)
                with torch.no_grad(), steering(lm, layer, delta):
                    logits = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device),
                                      use_cache=False).logits
                last = logits[torch.arange(len(idx)), mask.sum(1).to(logits.device) - 1].float().cpu()
                lp = torch.log_softmax(last, -1)
                for j, i in enumerate(idx):
                    out[v, a, i] = _score(last[j], lp[j], items[i])[0]
    return out
