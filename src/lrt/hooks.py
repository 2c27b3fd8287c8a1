"""Plain PyTorch forward hooks: capture residual-stream states, stop the forward pass early, edit states.

All hooks are removed when the context exits, exceptions included.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from .models import LoadedModel


class _StopForward(Exception):
    """Raised inside a hook to end the forward pass after the deepest needed layer."""


def unwrap(output):
    """The hidden-state tensor of a block's output (blocks return a tensor or a tuple starting with it)."""
    return output[0] if isinstance(output, (tuple, list)) else output


def rewrap(output, hidden: torch.Tensor):
    if isinstance(output, tuple):
        return (hidden,) + tuple(output[1:])
    if isinstance(output, list):
        return [hidden] + list(output[1:])
    return hidden


def _block_input(args, kwargs) -> torch.Tensor:
    return args[0] if args else kwargs["hidden_states"]


def pad_right(seqs: list[list[int]], pad: int, length: int | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Right-padded ``input_ids`` and ``attention_mask`` ``[len(seqs), length or longest]``."""
    T = length or max(len(s) for s in seqs)
    ids = torch.full((len(seqs), T), pad, dtype=torch.long)
    mask = torch.zeros((len(seqs), T), dtype=torch.long)
    for i, s in enumerate(seqs):
        ids[i, :len(s)] = torch.tensor(s, dtype=torch.long)
        mask[i, :len(s)] = 1
    return ids, mask


@contextlib.contextmanager
def hooks(handles: list) -> Iterator[None]:
    try:
        yield
    finally:
        for h in handles:
            h.remove()


def register_layer_hook(lm: LoadedModel, layer: int, fn: Callable[[torch.Tensor], torch.Tensor | None]):
    """Call ``fn(hidden)`` on layer ``layer``'s output (``-1`` = embed, the input of block 0).

    If ``fn`` returns a tensor, it replaces the layer's output. Returns the hook handle.
    """
    if layer == -1:
        def pre(module, args, kwargs):
            h = _block_input(args, kwargs)
            new = fn(h)
            if new is None:
                return None
            if args:
                return (new,) + tuple(args[1:]), kwargs
            return args, {**kwargs, "hidden_states": new}
        return lm.blocks[0].register_forward_pre_hook(pre, with_kwargs=True)

    def post(module, args, output):
        new = fn(unwrap(output))
        return None if new is None else rewrap(output, new)
    return lm.blocks[layer].register_forward_hook(post)


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
                raise _StopForward
        return fn

    handles = [register_layer_hook(lm, layer, make(layer)) for layer in layers]
    with hooks(handles):
        try:
            lm.model(input_ids=input_ids, attention_mask=attention_mask, use_cache=False)
        except _StopForward:
            pass
    return captured
