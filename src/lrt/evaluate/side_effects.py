"""Side effects of steering: KL divergence on neutral text, and A/B accuracy on a capability set (e.g. MMLU)."""

from __future__ import annotations

import torch

from ..data.contrasts import Item
from ..models.load import LoadedModel
from ..steering.apply import steering
from .answer import grid_for


@torch.no_grad()
def kl_side_effect(lm: LoadedModel, layer: int, texts_ids: list[list[int]], directions: torch.Tensor,
                   alpha: float, median_norm: float) -> list[float]:
    """Mean KL(p_unsteered ‖ p_steered) over positions of neutral text, per direction."""
    if not texts_ids:
        return [float("nan")] * len(directions)
    T = min(len(t) for t in texts_ids)
    ids = torch.tensor([t[:T] for t in texts_ids], device=lm.device)
    base = torch.log_softmax(lm.model(input_ids=ids, use_cache=False).logits.float(), -1)
    out = []
    for v in directions:
        with steering(lm, layer, alpha * median_norm * v):
            lp = torch.log_softmax(lm.model(input_ids=ids, use_cache=False).logits.float(), -1)
        out.append(float((base.exp() * (base - lp)).sum(-1).mean()))
    return out


def capability_side_effect(lm: LoadedModel, layer: int, items: list[Item], directions: torch.Tensor,
                           names: list[str], alpha: float, median_norm: float, batch_size: int,
                           progress: bool = False, positions: str = "all") -> dict:
    """A/B accuracy (propensity of the correct answer > 0) unsteered and at ``alpha``, per vector."""
    prop, _ = grid_for(positions)(lm, layer, items, directions, [0.0, alpha], median_norm, batch_size,
                                  progress=progress, desc="capability")
    acc = (prop > 0).float().mean(-1)                      # [V, 2]
    return {"alpha": alpha, "n_items": len(items), "unsteered": float(acc[0, 0]),
            "steered": {n: float(acc[k, 1]) for k, n in enumerate(names)}}
