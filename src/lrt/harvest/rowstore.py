"""Rows of paired activations kept on disk (a memory-mapped temporary file), for methods that need several
passes over them (the AdamW recipe); memory stays bounded whatever the row count."""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch


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
