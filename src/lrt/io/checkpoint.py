"""Checkpoints: a run's state (tensors + JSON: counters, data position, RNG states) in one safetensors file,
replaced atomically (temporary file, fsync, rename), so a crash or a full disk while writing leaves the previous
checkpoint intact. Never pickle: optimizer state and RNG states are stored as named tensors."""

from __future__ import annotations

import json
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import StoreError
from .files import atomic_path, to_json

STATE_KEY = "lrt_state"


def save_checkpoint(path: str | Path, tensors: dict[str, torch.Tensor], state: dict) -> Path:
    """Write ``tensors`` and the JSON-able ``state`` to ``path`` atomically."""
    path = Path(path)
    with atomic_path(path) as tmp:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(tmp),
                  metadata={STATE_KEY: to_json(state)})
    return path


def load_checkpoint(path: str | Path, fingerprint: dict | None = None, what: str = "run"
                    ) -> tuple[dict[str, torch.Tensor], dict]:
    """``(tensors, state)`` of a checkpoint written by :func:`save_checkpoint`. With ``fingerprint`` (what the run
    that resumes is: models, data, options), a checkpoint whose ``state["fingerprint"]`` differs is refused, naming
    the parts that differ."""
    from safetensors import safe_open

    path = Path(path)
    if not path.is_file():
        raise StoreError(f"no checkpoint at {path}; run without --resume to start from the beginning",
                         option="resume")
    try:
        with safe_open(str(path), "pt") as f:
            meta = f.metadata() or {}
        tensors = load_file(str(path))
        state = json.loads(meta[STATE_KEY])
    except Exception as e:
        raise StoreError(f"checkpoint {path} is unreadable ({type(e).__name__}: {e}); delete it and start again "
                         "without --resume", option="resume") from None
    if fingerprint is not None and state.get("fingerprint") != fingerprint:
        saved = state.get("fingerprint") or {}
        diff = sorted(k for k in set(fingerprint) | set(saved) if fingerprint.get(k) != saved.get(k))
        raise StoreError(f"the checkpoint {path} belongs to another {what} (it differs in {', '.join(diff)}); resume "
                         "with the same options, or start again without --resume", option="resume")
    return tensors, state


def rng_tensor(g: torch.Generator) -> torch.Tensor:
    """A generator's state as a tensor (for :func:`save_checkpoint`)."""
    return g.get_state().clone()


def optimizer_tensors(opt: torch.optim.Optimizer, prefix: str = "opt.") -> tuple[dict[str, torch.Tensor], dict]:
    """An optimizer's state dict as named tensors plus its JSON-able rest (param groups, scalar state)."""
    sd = opt.state_dict()
    tensors, scalars = {}, {}
    for pid, st in sd["state"].items():
        for k, v in st.items():
            if torch.is_tensor(v):
                tensors[f"{prefix}{pid}.{k}"] = v
            else:
                scalars[f"{pid}.{k}"] = v
    return tensors, {"param_groups": sd["param_groups"], "scalars": scalars}


def load_optimizer(opt: torch.optim.Optimizer, tensors: dict[str, torch.Tensor], rest: dict,
                   prefix: str = "opt.") -> None:
    """Restore an optimizer saved by :func:`optimizer_tensors`."""
    state: dict = {}
    for name, v in tensors.items():
        if name.startswith(prefix):
            pid, k = name[len(prefix):].split(".", 1)
            state.setdefault(int(pid), {})[k] = v
    for key, v in rest["scalars"].items():
        pid, k = key.split(".", 1)
        state.setdefault(int(pid), {})[k] = v
    opt.load_state_dict({"state": state, "param_groups": rest["param_groups"]})
