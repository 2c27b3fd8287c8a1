"""The LRT paper's recipe for the map: a linear layer trained with AdamW (batch 32, lr 1e-4) on stored rows.

Kept to compare with the closed form on the same rows. Rows live in a disk-backed :class:`RowStore`,
so memory stays bounded; each epoch reads them in a seeded random order.
"""

from __future__ import annotations

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm


class RowStore:
    """Append-only float32 rows ``[x | y]`` in a memory-mapped temporary file."""

    def __init__(self, capacity: int, dx: int, dy: int):
        self._dir = tempfile.TemporaryDirectory(prefix="lrt-rows-")
        self.dx, self.dy, self.n = dx, dy, 0
        self.data = np.lib.format.open_memmap(Path(self._dir.name) / "rows.npy", mode="w+", dtype=np.float32,
                                              shape=(capacity, dx + dy))

    def append(self, x: torch.Tensor, y: torch.Tensor) -> None:
        k = min(len(x), len(self.data) - self.n)
        self.data[self.n:self.n + k, :self.dx] = x[:k].float().cpu().numpy()
        self.data[self.n:self.n + k, self.dx:] = y[:k].float().cpu().numpy()
        self.n += k

    def batch(self, idx: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        rows = torch.from_numpy(np.asarray(self.data[np.sort(idx)]))
        return rows[:, :self.dx], rows[:, self.dx:]


@dataclass
class AdamWConfig:
    epochs: int = 4
    lr: float = 1e-4
    batch_size: int = 32
    weight_decay: float = 0.0
    eval_every: int = 2000   # steps between held-out evaluations
    seed: int = 0
    progress: bool = True


def fit_adamw(store: RowStore, heldout: tuple[torch.Tensor, torch.Tensor], cfg: AdamWConfig):
    """Train ``y ≈ A·x + p`` with AdamW; returns ``(A, p, history)`` with the best held-out weights."""
    torch.manual_seed(cfg.seed)
    layer = torch.nn.Linear(store.dx, store.dy)
    opt = torch.optim.AdamW(layer.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    hx, hy = heldout
    rng = np.random.default_rng(cfg.seed)
    history, best = [], (float("inf"), None, None)
    t0, step = time.time(), 0

    def evaluate():
        nonlocal best
        with torch.no_grad():
            mse = float(torch.nn.functional.mse_loss(layer(hx), hy))
        history.append({"step": step, "seconds": round(time.time() - t0, 3), "heldout_mse": mse})
        if mse < best[0]:
            best = (mse, layer.weight.detach().clone(), layer.bias.detach().clone())

    n_steps = cfg.epochs * (store.n // cfg.batch_size)
    bar = tqdm(total=n_steps, desc="adamw", unit="step", disable=not cfg.progress)
    for _ in range(cfg.epochs):
        order = rng.permutation(store.n)
        for i in range(0, store.n - cfg.batch_size + 1, cfg.batch_size):
            x, y = store.batch(order[i:i + cfg.batch_size])
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
