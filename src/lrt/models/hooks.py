"""Plain PyTorch forward hooks on the block list: read or replace a layer's output (``-1``: the input of block 0).

All hooks are removed when the context exits, exceptions included.
"""

from __future__ import annotations

import contextlib
from typing import Callable, Iterator

import torch

from .load import LoadedModel


class StopForward(Exception):
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
