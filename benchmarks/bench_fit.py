"""Map fitting: streaming closed form vs the AdamW recipe vs in-memory torch.linalg.lstsq, same rows.

Rows: ``--rows`` pairs of ``d_s → d_t`` vectors with a known affine relation, heavy-tailed token norms
(1% of rows ×20, like massive activations) and noise, written once to a memory-mapped file; every method
reads the same file in its own subprocess, so peak RSS is each method's own.

    python benchmarks/bench_fit.py --rows 200000 --ds 512 --dt 768
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

CHUNK = 8192


def make_rows(path: Path, n: int, ds: int, dt: int, seed: int = 0) -> None:
    g = torch.Generator().manual_seed(seed)
    A = torch.randn(dt, ds, generator=g) / ds ** 0.5
    p = torch.randn(dt, generator=g)
    basis = torch.randn(ds, ds, generator=g) / ds ** 0.5   # correlated inputs, like hidden states
    data = np.lib.format.open_memmap(path, mode="w+", dtype=np.float32, shape=(n, ds + dt))
    for i in range(0, n, CHUNK):
        k = min(CHUNK, n - i)
        x = torch.randn(k, ds, generator=g) @ basis + 2.0
        x[torch.rand(k, generator=g) < 0.01] *= 20
        y = x @ A.T + p + 0.3 * torch.randn(k, dt, generator=g)
        data[i:i + k, :ds], data[i:i + k, ds:] = x.numpy(), y.numpy()
    data.flush()


def run_method(method: str, path: Path, ds: int, heldout: int, epochs: int) -> dict:
    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))
    from lrt.harvest.rowstore import RowStore
    from lrt.maps.adamw import fit_adamw
    from lrt.maps.config import AdamWConfig
    from lrt.maps.solve import solve_affine
    from lrt.stats.moments import MomentStats

    data = np.load(path, mmap_mode="r")
    n = len(data) - heldout
    hx = torch.from_numpy(np.array(data[n:, :ds]))
    hy = torch.from_numpy(np.array(data[n:, ds:]))
    del data                                  # each method opens the rows its own way
    data = np.load(path, mmap_mode="r") if method != "closed-form" else np.empty((n + heldout, 0))
    t0 = time.perf_counter()
    extra = {}
    if method == "closed-form":      # streams plain reads of the file: resident memory is what the method holds
        width = hx.shape[1] + hy.shape[1]
        s = MomentStats(ds, width - ds)
        with open(path, "rb") as f:
            version = np.lib.format.read_magic(f)
            header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                      else np.lib.format.read_array_header_2_0)
            header(f)
            for i in range(0, n, CHUNK):
                k = min(n, i + CHUNK) - i
                rows = torch.from_numpy(np.fromfile(f, dtype=np.float32, count=k * width).reshape(k, width))
                s.update(rows[:, :ds], rows[:, ds:])
        A, p = solve_affine(s, ridge=1e-6)
    elif method == "lstsq":
        X = torch.from_numpy(np.array(data[:n, :ds]))
        Y = torch.from_numpy(np.array(data[:n, ds:]))
        X1 = torch.cat([X, torch.ones(n, 1)], 1)
        W = torch.linalg.lstsq(X1, Y).solution
        A, p = W[:-1].T, W[-1]
    else:
        store = RowStore.__new__(RowStore)     # reuse the benchmark's file as the row store
        store.dx, store.dy, store.n, store.data = ds, data.shape[1] - ds, n, data
        A, p, hist = fit_adamw(store, (hx, hy), AdamWConfig(epochs=epochs, eval_every=1000), seed=0, progress=False)
        best = min(hist, key=lambda h: h["heldout_mse"])
        extra = {"seconds_to_best": best["seconds"], "steps": hist[-1]["step"]}
    seconds = time.perf_counter() - t0
    mse = float(((hx.double() @ A.double().T + p.double() - hy.double()) ** 2).mean())
    return {"method": method, "seconds": seconds, "heldout_mse": mse, "peak_rss_mb": peak_rss_mb(), **extra}


def peak_rss_mb() -> float:
    """This process's own peak resident set (VmHWM). ru_maxrss is not used: Linux carries it over fork and exec,
    so a subprocess would report its parent's peak (here: generating the rows)."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--rows", type=int, default=200_000)
    ap.add_argument("--ds", type=int, default=512)
    ap.add_argument("--dt", type=int, default=768)
    ap.add_argument("--heldout", type=int, default=10_000)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--run", default=None, help=argparse.SUPPRESS)
    ap.add_argument("--path", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.run:
        print(json.dumps(run_method(a.run, Path(a.path), a.ds, a.heldout, a.epochs)))
        return
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "rows.npy"
        make_rows(path, a.rows, a.ds, a.dt)
        results = {}
        for method in ("closed-form", "lstsq", "adamw"):
            out = subprocess.run([sys.executable, __file__, "--run", method, "--path", str(path), "--ds", str(a.ds),
                                  "--heldout", str(a.heldout), "--epochs", str(a.epochs)], capture_output=True,
                                 text=True, check=True, env={**os.environ})
            results[method] = json.loads(out.stdout.strip().splitlines()[-1])
    cf = results["closed-form"]
    print(f"\nmap fitting, {a.rows - a.heldout:,} train rows, {a.ds}→{a.dt}, held-out {a.heldout:,} rows "
          f"(torch {torch.__version__}, {torch.get_num_threads()} threads)")
    print(f"{'method':<12} {'seconds':>9} {'to best':>9} {'peak RSS MB':>12} {'held-out MSE':>13} {'time ratio':>11}")
    for m, r in results.items():
        t = r.get("seconds_to_best", r["seconds"])
        print(f"{m:<12} {r['seconds']:>9.2f} {t:>9.2f} {r['peak_rss_mb']:>12.0f} {r['heldout_mse']:>13.6f} "
              f"{t / cf['seconds']:>10.1f}×")


if __name__ == "__main__":
    main()
