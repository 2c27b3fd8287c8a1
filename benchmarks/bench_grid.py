"""Batched α-grid evaluation vs a per-α loop, same items, same vectors, same numbers (to 1e-5).

The loop runs one steering context per (vector, α) over the items (batched over items); the grid puts every
(vector, α, item) row in large padded batches with a per-row vector, and runs α = 0 once.

    python benchmarks/bench_grid.py --model zoo-m --layer 1
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))


def main() -> None:
    from lrt import zoo
    from lrt.data.concepts import sentiment_items
    from lrt.evaluate.config import default_alphas
    from lrt.evaluate.propensity import propensity_grid
    from lrt.evaluate.steering import random_directions
    from lrt.models.load import load_model
    from propensity_oracle import propensity_loop      # tests/propensity_oracle.py: the per-(vector, α) loop

    ap = argparse.ArgumentParser()
    ap.add_argument("--model", default="zoo-m")
    ap.add_argument("--layer", type=int, default=1)
    ap.add_argument("--vectors", type=int, default=11, help="native + 2 transferred + 8 random")
    ap.add_argument("--grid-batch", type=int, default=256)
    ap.add_argument("--loop-batch", type=int, default=64)
    a = ap.parse_args()
    lm = load_model(a.model)
    items = sentiment_items(lm.tokenizer, str(zoo.heldout_text()), lowercase=True)
    dirs = random_directions(a.vectors, lm.d_model, 0)
    alphas = default_alphas()
    with torch.no_grad():
        t = time.perf_counter()
        grid, _ = propensity_grid(lm, a.layer, items, dirs, alphas, 10.0, a.grid_batch)
        t_grid = time.perf_counter() - t
        t = time.perf_counter()
        loop = propensity_loop(lm, a.layer, items, dirs, alphas, 10.0, a.loop_batch)
        t_loop = time.perf_counter() - t
    diff = float((grid - loop).abs().max())
    print(f"\nα-grid evaluation, {lm.name} layer {a.layer}: {len(items)} items × {len(alphas)} α × {a.vectors} vectors "
          f"({torch.get_num_threads()} threads)")
    print(f"{'method':<10} {'seconds':>8} {'speed-up':>9}")
    print(f"{'loop':<10} {t_loop:>8.2f} {1.0:>8.2f}×")
    print(f"{'grid':<10} {t_grid:>8.2f} {t_loop / t_grid:>8.2f}×")
    print(f"max |grid − loop| = {diff:.2e}")


if __name__ == "__main__":
    main()
