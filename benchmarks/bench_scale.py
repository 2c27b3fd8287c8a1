"""Scale-out costs on this machine: one process vs two gloo ranks (fit-map, sae train), the all-reduce of the
statistics vs their width d, and the activation store (write, read, fit from it) vs a fresh harvest.

    python benchmarks/bench_scale.py --tokens 60000 --out runs/bench-scale

Everything runs through the CLI as a user would (``python -m lrt`` and ``python -m torch.distributed.run``), each
command timed from the outside; the all-reduce is timed inside two spawned gloo ranks.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import torch

ENV = {**os.environ, "TOKENIZERS_PARALLELISM": "false"}


def port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def timed(cmd: list, ranks: int = 1, threads: int | None = None) -> float:
    env = dict(ENV, OMP_NUM_THREADS=str(threads or max(1, (os.cpu_count() or 2) // ranks)))
    pre = [sys.executable, "-m", "torch.distributed.run", "--nproc-per-node", str(ranks), "--master-port",
           str(port())] if ranks > 1 else [sys.executable]
    t0 = time.time()
    r = subprocess.run(pre + ["-m", "lrt", *map(str, cmd)], env=env, capture_output=True, text=True)
    if r.returncode:
        raise SystemExit(f"{' '.join(map(str, cmd))} failed:\n{r.stderr[-2000:]}")
    return time.time() - t0


def _allreduce_rank(rank: int, world: int, p: int, dims: list[int], reps: int, out: str) -> None:
    import torch.distributed as dist

    from lrt.stats.moments import MomentStats

    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{p}", rank=rank, world_size=world)
    res = {}
    for d in dims:
        s = MomentStats.of(torch.randn(4 * d, d), torch.randn(4 * d, d))
        dist.barrier()
        t0 = time.perf_counter()
        for _ in range(reps):
            s.all_reduce()
        res[d] = (time.perf_counter() - t0) / reps
    if rank == 0:
        Path(out).write_text(json.dumps(res))
    dist.destroy_process_group()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="zoo-s")
    ap.add_argument("--target", default="zoo-m")
    ap.add_argument("--tokens", type=int, default=60000)
    ap.add_argument("--sae-tokens", type=int, default=60000)
    ap.add_argument("--dims", default="128,256,512,1024,1536,2048")
    ap.add_argument("--out", default="runs/bench-scale")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = {}
    fit = ["fit-map", "--source", args.source, "--target", args.target, "--tokens", args.tokens, "--no-progress"]
    rows["fit-map, 1 process"] = timed(fit + ["--out", out / "fit1"])
    rows["fit-map, 2 gloo ranks"] = timed(fit + ["--out", out / "fit2"], ranks=2)
    from safetensors.torch import load_file

    a, b = load_file(out / "fit1" / "map.safetensors"), load_file(out / "fit2" / "map.safetensors")
    max_diff = float((a["A"] - b["A"]).abs().max())
    layers = json.loads((out / "fit1" / "map.json").read_text())
    ls, lt = layers["source_layer"], layers["target_layer"]
    store = ["harvest", "--model", args.source, "--model", args.target, "--layers", ls, "--layers", lt,
             "--tokens", args.tokens, "--no-progress", "--out", out / "store"]
    subprocess.run(["rm", "-rf", str(out / "store")])
    rows["harvest → store"] = timed(store)
    rows["fit-map --store, 1 process"] = timed(["fit-map", "--store", out / "store", "--no-progress",
                                                "--out", out / "fit-store"])
    rows["fit-map --store, 2 gloo ranks"] = timed(["fit-map", "--store", out / "store", "--no-progress",
                                                   "--out", out / "fit-store2"], ranks=2)
    c = load_file(out / "fit-store" / "map.safetensors")
    store_diff = float((a["A"] - c["A"]).abs().max())
    sae = ["sae", "train", "--model", args.source, "--layer", ls, "--tokens", args.sae_tokens, "--k", 16,
           "--expansion", 8, "--eval-tokens", 2000, "--no-progress"]
    rows["sae train, 1 process"] = timed(sae + ["--out", out / "sae1"])
    rows["sae train, 2 gloo ranks"] = timed(sae + ["--out", out / "sae2"], ranks=2)
    fvu = [json.loads((out / d / "metrics.json").read_text())["final"]["fvu"] for d in ("sae1", "sae2")]
    import torch.multiprocessing as mp

    dims = [int(x) for x in args.dims.split(",")]
    mp.spawn(_allreduce_rank, args=(2, port(), dims, 3, str(out / "allreduce.json")), nprocs=2, join=True)
    allreduce = json.loads((out / "allreduce.json").read_text())
    m = json.loads((out / "store" / "manifest.json").read_text())
    size = sum(s["bytes"] for s in m["shards"])
    print(f"\n{'command':34s} {'seconds':>8s} {'tokens/s':>9s}")
    for k, v in rows.items():
        n = args.sae_tokens if k.startswith("sae") else args.tokens
        print(f"{k:34s} {v:8.1f} {n / v:9.0f}")
    print(f"\nmax |A(2 ranks) − A(1 process)| = {max_diff:.2e};  max |A(store) − A(live)| = {store_diff:.2e}")
    print(f"store: {m['rows']:,} rows, {size / 1e6:.1f} MB in {len(m['shards'])} shards")
    print(f"SAE held-out FVU: 1 process {fvu[0]}, 2 ranks {fvu[1]}")
    print("\nall-reduce of the statistics (2 gloo ranks): " +
          ", ".join(f"d={d}: {float(t) * 1e3:.1f} ms" for d, t in allreduce.items()))
    (out / "results.json").write_text(json.dumps({"args": vars(args), "seconds": rows, "max_diff_ranks": max_diff,
                                                  "max_diff_store": store_diff, "store_bytes": size,
                                                  "store_rows": m["rows"], "sae_fvu": fvu,
                                                  "allreduce_seconds": allreduce, "cpus": os.cpu_count()}, indent=2))


if __name__ == "__main__":
    main()
