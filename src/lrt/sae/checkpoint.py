"""An SAE training run's full state as a checkpoint (:mod:`lrt.io.checkpoint`): the SAE, Adam's moments, the
shuffle generator, the rows waiting in the shuffle buffer, the held-out rows, the counters, the metric rows so far,
and the data position (stream items consumed) — everything needed to continue the run exactly."""

from __future__ import annotations

import time
from pathlib import Path

import torch

from .. import distributed
from ..io.checkpoint import load_checkpoint, load_optimizer, optimizer_tensors, save_checkpoint
from .model import SparseAutoencoder

def rank_path(path: str | Path) -> Path:
    """This process's checkpoint file: ``path`` itself, or ``STEM.rankR.safetensors`` under torchrun (each rank keeps
    its own shuffle buffer, generator and held-out rows)."""
    path = Path(path)
    return path.with_name(f"{path.stem}.rank{distributed.rank()}{path.suffix}") if distributed.active() else path


COUNTERS = ("step_no", "tokens", "flops_per_step", "extra_flops", "history", "lr")


def save_trainer(path: Path, tr, buf: list[torch.Tensor], position: int, fingerprint: dict) -> None:
    """Checkpoint trainer ``tr`` (a :class:`lrt.sae.train._Trainer`) after ``position`` stream items."""
    opt_t, opt_rest = optimizer_tensors(tr.opt)
    tensors = {**{f"sae.{k}": v for k, v in tr.sae.tensors().items()}, **opt_t,
               "last_fired": tr.last_fired, "rng": tr.g.get_state(),
               "buffer": torch.cat(buf) if buf else torch.empty(0, tr.d_in)}
    if tr.eval_x is not None:
        tensors["eval_x"] = tr.eval_x
    state = {"position": position, "fingerprint": fingerprint, "optimizer": opt_rest,
             "seconds": round(tr.elapsed(), 3), **{k: getattr(tr, k) for k in COUNTERS}}
    save_checkpoint(path, tensors, state)


def restore_trainer(path: Path, tr, fingerprint: dict) -> tuple[list[torch.Tensor], int]:
    """Load a checkpoint into trainer ``tr``; returns ``(shuffle buffer, stream position)``. Refuses a checkpoint
    of another run (model, layer, data or training options)."""
    tensors, state = load_checkpoint(path, fingerprint, "run")
    sae_t = {k[4:]: v for k, v in tensors.items() if k.startswith("sae.")}
    tr.sae = SparseAutoencoder.from_tensors(sae_t, "topk", tr.cfg.k, True, tr.meta)
    tr.opt = tr.new_optimizer()
    fused = tr.opt.defaults.get("fused")
    load_optimizer(tr.opt, tensors, state["optimizer"])
    for group in tr.opt.param_groups:                  # this device's choice, not the saving one's
        group["fused"] = fused
    tr.last_fired = tensors["last_fired"]
    tr.g.set_state(tensors["rng"])
    tr.eval_x = tensors.get("eval_x")
    for k in COUNTERS:
        setattr(tr, k, state[k])
    tr.t0 = time.time() - state["seconds"]
    buf = [tensors["buffer"]] if len(tensors["buffer"]) else []
    return buf, int(state["position"])
