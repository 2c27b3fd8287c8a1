"""Propensities with steering at the answer position only (``positions="answer"``).

The LRT paper steers every position. Steering only the position whose next-token logits score the answer (the
last prompt token) is much cheaper: the prompt before it is unsteered, so its KV cache is computed once per item
and shared by every (vector, α) row, each of which is then a one-token forward. On a CPU this turns the
evaluation of a real model from minutes per behaviour into seconds; its slopes differ from all-position
steering (a weaker intervention) — compare both before relying on it.
"""

from __future__ import annotations

import copy

import torch
from tqdm.auto import tqdm

from ..data.contrasts import Item
from ..models.hooks import hooks, register_layer_hook
from ..models.load import LoadedModel
from ..models.kv import cache_arg, output_cache
from .propensity import _score, propensity_grid


@torch.no_grad()
def answer_rows(lm: LoadedModel, layer: int, item: Item, deltas: torch.Tensor, batch_size: int = 64
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """(propensity [R], m_LD [R]) of one item with ``deltas [R, d]`` added at ``layer``, last position only."""
    dev = lm.device
    prefix, last = item.ids[:-1], item.ids[-1]
    cache = None
    if prefix:
        out = lm.model(input_ids=torch.tensor([prefix], device=dev), use_cache=True)
        cache = output_cache(out)
    current = {}

    def add(h: torch.Tensor) -> torch.Tensor:
        return h + current["delta"].to(h.device, h.dtype)[:, None, :]

    props, mlds = [], []
    with hooks([register_layer_hook(lm, layer, add)]):
        for s in range(0, len(deltas), batch_size):
            chunk = deltas[s:s + batch_size]
            current["delta"] = chunk
            kw = {}
            if cache is not None:
                c = copy.deepcopy(cache)
                c.batch_repeat_interleave(len(chunk))
                kw = {cache_arg(lm.model): c,
                      "attention_mask": torch.ones(len(chunk), len(item.ids), dtype=torch.long, device=dev)}
            logits = lm.model(input_ids=torch.full((len(chunk), 1), last, device=dev), use_cache=cache is not None,
                              **kw).logits[:, -1].float().cpu()
            p, m = _score(logits, torch.log_softmax(logits, -1), item)
            props.append(p)
            mlds.append(m)
    return torch.cat(props), torch.cat(mlds)


def answer_grid(lm: LoadedModel, layer: int, items: list[Item], directions: torch.Tensor, alphas: list[float],
                median_norm: float, batch_size: int = 64, progress: bool = False, desc: str = "α grid (answer)"
                ) -> tuple[torch.Tensor, torch.Tensor]:
    """Propensities ``[V, A, N]`` (and m_LD) like :func:`lrt.evaluate.propensity.propensity_grid`, steering only
    the answer position; the prompt's cache is computed once per item."""
    V, A, N = len(directions), len(alphas), len(items)
    coef = torch.tensor(alphas, dtype=torch.float32) * median_norm
    deltas = (coef[None, :, None] * directions.float()[:, None, :]).reshape(V * A, -1)      # row v·A + a
    out_p, out_m = torch.empty(V, A, N), torch.empty(V, A, N)
    for i in tqdm(range(N), desc=desc, unit="item", disable=not progress):
        p, m = answer_rows(lm, layer, items[i], deltas, batch_size)
        out_p[:, :, i], out_m[:, :, i] = p.view(V, A), m.view(V, A)
    return out_p, out_m


def grid_for(positions: str):
    """The propensity grid of an intervention (``--positions``): :func:`answer_grid` for ``"answer"`` (only the
    answer position steered), :func:`lrt.evaluate.propensity.propensity_grid` for ``"all"`` (every position)."""
    return answer_grid if positions == "answer" else propensity_grid
