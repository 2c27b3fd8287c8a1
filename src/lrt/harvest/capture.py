"""The one capture: run a model on token ids and read any set of layers, stopping after the deepest.

Every component that needs hidden states — the paired harvest, steering vectors, the propensity grid's shared
prefix, and what comes next (SAEs, probes) — reads them through :func:`run_with_capture` or
:func:`capture_batches`, and leaves positions out by one rule, :func:`keep_mask`.
"""

from __future__ import annotations

from typing import Iterator

import torch
from tqdm.auto import tqdm

from ..data.packing import pad_right
from ..models.hooks import StopForward, hooks, register_layer_hook
from ..models.load import LoadedModel


def keep_mask(attention_mask: torch.Tensor, skip_first: bool = True) -> torch.Tensor:
    """The positions whose states count: real tokens, minus position 0 (the attention sink) unless kept."""
    keep = attention_mask.bool().clone()
    if skip_first:
        keep[:, 0] = False
    return keep


@torch.no_grad()
def run_with_capture(lm: LoadedModel, layers: list[int], input_ids: torch.Tensor,
                     attention_mask: torch.Tensor | None = None, early_stop: bool = True) -> dict[int, torch.Tensor]:
    """Forward ``input_ids`` and return ``{layer: hidden [batch, seq, d]}``.

    With ``early_stop`` the pass ends right after the deepest requested layer (no later blocks, no LM head).
    """
    layers = sorted(set(layers))
    deepest = layers[-1]
    captured: dict[int, torch.Tensor] = {}

    def make(layer):
        def fn(h):
            captured[layer] = h.detach()
            if early_stop and layer == deepest:
                raise StopForward
        return fn

    handles = [register_layer_hook(lm, layer, make(layer)) for layer in layers]
    with hooks(handles):
        try:
            lm.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except StopForward:
            pass
    return captured


def capture_batches(lm: LoadedModel, seqs: list[list[int]], layers: list[int], batch_size: int = 16,
                    progress: bool = False, desc: str = "capture"
                    ) -> Iterator[tuple[dict[int, torch.Tensor], torch.Tensor]]:
    """Forward token sequences (right-padded, in order) with early stop; yield ``({layer: [B, T, d]}, mask [B, T])``
    with states as float32 on the CPU."""
    pad = lm.tokenizer.pad_token_id or 0
    with tqdm(total=len(seqs), unit="seq", desc=desc, disable=not progress) as bar:
        for i in range(0, len(seqs), batch_size):
            ids, mask = pad_right(seqs[i:i + batch_size], pad)
            hs = run_with_capture(lm, layers, ids.to(lm.device), mask.to(lm.device))
            bar.update(len(ids))
            yield {layer: h.float().cpu() for layer, h in hs.items()}, mask
