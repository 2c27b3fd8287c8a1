"""Family training throughput: one process × 2 threads (sizes one after another) vs 2 processes × 1 thread.

    python benchmarks/bench_train_jobs.py --steps 40

Uses the shipped tokenizer (no tokenizer training) and the real sizes and recipe; times only the training
loops (no cards). Both layouts run the same steps on the same data, side by side in one run.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    import torch

    from lrt import zoo
    from lrt.zoo.training.config import DEFAULT_SIZES, TrainConfig
    from lrt.zoo.training.loop import _streams, _train_in_processes, train_one

    ap = argparse.ArgumentParser()
    ap.add_argument("--corpus", default=str(Path(__file__).resolve().parents[2] / "shared/data/natural_text.jsonl.gz"))
    ap.add_argument("--steps", type=int, default=40, help="training steps per size")
    a = ap.parse_args()
    root = Path(tempfile.mkdtemp(prefix="lrt-bench-train-"))
    tok_dir = root / "cache" / "tokenizer"
    tok_dir.mkdir(parents=True)
    for f in ("tokenizer.json", "tokenizer_config.json"):
        shutil.copy(zoo.path("xs") / f, tok_dir / f)
    sizes = list(DEFAULT_SIZES.values())
    base = TrainConfig(corpus=a.corpus, out=str(root / "cache"), sizes=sizes, tokens=a.steps * 16 * 256,
                       checkpoint_every=10**9)
    _streams(base)                                   # tokenize once; both layouts reuse the cached streams
    tokens = a.steps * 16 * 256 * len(sizes)
    results = {}
    for jobs, threads in ((1, 2), (2, 1)):
        out = root / f"jobs{jobs}"
        shutil.copytree(root / "cache", out)
        cfg = TrainConfig(**{**base.__dict__, "out": str(out), "jobs": jobs, "threads": threads})
        t0 = time.perf_counter()
        if jobs > 1:
            _train_in_processes(cfg)
        else:
            torch.set_num_threads(threads)
            tok, train, held = _streams(cfg)
            for size in sizes:
                train_one(size, cfg, tok, train, held)
        results[(jobs, threads)] = time.perf_counter() - t0
    shutil.rmtree(root, ignore_errors=True)
    print(f"\nxs + s + m, {a.steps} steps each ({tokens:,} tokens in all; times include each model's final "
          "held-out evaluation and save)")
    for (jobs, threads), sec in results.items():
        print(f"  {jobs} process(es) × {threads} thread(s): {sec:7.1f} s  {tokens / sec:8.0f} tokens/s")
    print(f"  ratio: {results[(1, 2)] / results[(2, 1)]:.2f}× for 2 × 1")


if __name__ == "__main__":
    main()
