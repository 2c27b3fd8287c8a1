"""Apply a steering vector at a layer: add, ablate or clamp, at chosen positions; works under generate().

``delta`` is the vector actually added: ``α · median_norm · v̂`` (see :func:`scaled`). It may be one
vector ``[d]`` or one per batch row ``[B, d]`` — that is how a whole α grid runs in one batch.
"""

from __future__ import annotations

import contextlib
from typing import Iterator

import torch

from ..errors import ConfigError, DimensionMismatchError
from ..models.hooks import hooks, register_layer_hook
from ..models.layers import LayerSpec
from ..models.load import LoadedModel
from .config import MODES, WHERE



def scaled(unit: torch.Tensor, alpha: float | torch.Tensor, median_norm: float) -> torch.Tensor:
    """``α · median_norm · unit``; ``alpha`` may be a tensor of per-row coefficients."""
    alpha = torch.as_tensor(alpha, dtype=unit.dtype)
    return (alpha[..., None] if alpha.ndim else alpha) * median_norm * unit


@contextlib.contextmanager
def steering(lm: LoadedModel, layer: LayerSpec, delta: torch.Tensor, mode: str = "add",
             where: str = "all") -> Iterator[None]:
    """Context manager: while inside, ``layer``'s output is steered by ``delta`` (hooks removed on exit).

    mode ``add``: h + δ; ``ablate``: remove the component along δ; ``clamp``: set that component to ‖δ‖ (signed).
    where ``all``: every position; ``after_prompt``: the last prompt token and everything generated;
    ``generated``: generated tokens only (with the KV cache, the calls after the first).
    """
    if mode not in MODES:
        raise ConfigError(f"unknown steering mode {mode!r}; use one of {', '.join(MODES)}")
    if where not in WHERE:
        raise ConfigError(f"unknown position mode {where!r}; use one of {', '.join(WHERE)}")
    if delta.shape[-1] != lm.d_model:
        raise DimensionMismatchError(f"steering vector has width {delta.shape[-1]} but {lm.name} has width "
                                     f"{lm.d_model}; transfer it with a map first")
    li = lm.layer_index(layer)
    state = {"seen": 0, "prompt_len": None}

    def fn(h: torch.Tensor) -> torch.Tensor:
        B, T, _ = h.shape
        if state["prompt_len"] is None:
            state["prompt_len"] = T
        pos = state["seen"] + torch.arange(T, device=h.device)
        state["seen"] += T
        d = delta.to(h.device, h.dtype)
        d = d[:, None, :] if d.ndim == 2 else d[None, None, :]     # [B|1, 1, d]
        if where == "all":
            gate = torch.ones(T, device=h.device, dtype=h.dtype)
        else:
            start = state["prompt_len"] - (1 if where == "after_prompt" else 0)
            gate = (pos >= start).to(h.dtype)
        gate = gate[None, :, None]
        if mode == "add":
            return h + gate * d
        u = d / d.norm(dim=-1, keepdim=True).clamp_min(1e-12)
        proj = (h * u).sum(-1, keepdim=True)
        target = 0.0 if mode == "ablate" else d.norm(dim=-1, keepdim=True)
        return h + gate * (target - proj) * u

    with hooks([register_layer_hook(lm, li, fn)]):
        yield
