"""The KV cache across transformers versions: the forward argument and output field were ``past_key_values`` and are
``cache`` from 5.2x on (the old name warns, then goes)."""

from __future__ import annotations

import inspect


def cache_arg(model) -> str:
    """The name under which ``model``'s forward takes a KV cache."""
    return "cache" if "cache" in inspect.signature(model.forward).parameters else "past_key_values"


def output_cache(out):
    """The KV cache a forward pass with ``use_cache=True`` returned."""
    return out["cache"] if "cache" in out else out["past_key_values"]
