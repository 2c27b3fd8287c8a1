"""The LRT paper's recipe for the map: a linear layer trained with AdamW (batch 32, lr 1e-4) on stored rows.

Kept to compare with the closed form on the same rows. Rows live in a disk-backed
:class:`~lrt.harvest.rowstore.RowStore`, so memory stays bounded; each epoch reads them in a seeded random order.
"""

from __future__ import annotations

import math
import time

import numpy as np
import torch
from tqdm.auto import tqdm

from ..harvest.rowstore import RowStore
from .config import AdamWConfig


def fit_adamw(store: RowStore, heldout: tuple[torch.Tensor, torch.Tensor], cfg: AdamWConfig, seed: int = 0,
              progress: bool = True):
    """Train ``y ≈ A·x + p`` with AdamW; returns ``(A, p, history)`` with the best held-out weights."""
    layer = _seeded_linear(store.dx, store.dy, seed)
    opt = torch.optim.AdamW(layer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    hx, hy = heldout
    rng = np.random.default_rng(seed)
    history, best = [], (float("inf"), None, None)
    t0, step = time.time(), 0

    def evaluate():
        nonlocal best
        with torch.no_grad():
            mse = float(torch.nn.functional.mse_loss(layer(hx), hy))
        history.append({"step": step, "seconds": round(time.time() - t0, 3), "heldout_mse": mse})
        if mse < best[0]:
            best = (mse, layer.weight.detach().clone(), layer.bias.detach().clone())

    n_steps = cfg.epochs * (store.n // cfg.adamw_batch_size)
    bar = tqdm(total=n_steps, desc="adamw", unit="step", disable=not progress)
    for _ in range(cfg.epochs):
        order = rng.permutation(store.n)
        for i in range(0, store.n - cfg.adamw_batch_size + 1, cfg.adamw_batch_size):
            x, y = store.batch(order[i:i + cfg.adamw_batch_size])
            loss = torch.nn.functional.mse_loss(layer(x), y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            step += 1
            bar.update(1)
            if step % cfg.eval_every == 0:
                evaluate()
    bar.close()
    evaluate()
    return best[1].double(), best[2].double(), history


def _seeded_linear(d_in: int, d_out: int, seed: int) -> torch.nn.Linear:
    """``nn.Linear``'s own initialisation, drawn from a private generator (the global RNG is left alone)."""
    g = torch.Generator().manual_seed(seed)
    layer = torch.nn.Linear(d_in, d_out)
    with torch.no_grad():
        torch.nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=g)
        bound = 1 / math.sqrt(d_in) if d_in > 0 else 0.0
        torch.nn.init.uniform_(layer.bias, -bound, bound, generator=g)
    return layer
