"""Where lrt's SAE training step spends its time, and the encoder weight gradient two ways.

    python benchmarks/profile_sae_step.py --d 256 --latents 4096 --k 32 --batch 1024      # 1 thread

Prints the step's milliseconds and tokens/s (lrt.sae.train._Trainer.step on bench_sae_train.py's rows), the
torch.profiler table of its top operators, and the encoder weight gradient of one batch computed as sparsify does
(per-row outer products, index_add) and as lrt does (one torch.sparse.mm), with their difference. The step before
the sparse product (86 ms at these sizes) is the same script run on commit 6d1e304.
"""

from __future__ import annotations

import argparse
import time

import torch

from bench_sae_train import rows


def ms(f, reps: int = 30) -> float:
    f(), f()
    t0 = time.perf_counter()
    for _ in range(reps):
        f()
    return (time.perf_counter() - t0) / reps * 1e3


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--latents", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    a = ap.parse_args()
    torch.set_num_threads(a.threads)
    from torch.profiler import profile

    from lrt.sae.config import SAETrainConfig
    from lrt.sae.train import _Trainer

    B, d, n, k = a.batch, a.d, a.latents, a.k
    data = rows(d, B * 8)
    tr = _Trainer(SAETrainConfig(k=k, latents=n, lr=2e-4, sae_batch_size=B), d, {})
    tr.start(data)
    i = [0]

    def step():
        tr.step(data[(i[0] % 8) * B:(i[0] % 8 + 1) * B])
        i[0] += 1

    t = ms(step, 20)
    print(f"step {t:.1f} ms, {B / t * 1e3:,.0f} tokens/s (d {d}, latents {n}, k {k}, batch {B}, {a.threads} thread(s))")
    with profile() as p:
        for _ in range(5):
            step()
    print(p.key_averages().table(sort_by="self_cpu_time_total", row_limit=12))
    x = data[:B]
    vals, idx = (x @ tr.sae.W_enc.detach() + tr.sae.b_enc.detach()).topk(k, dim=-1, sorted=False)
    g, flat = torch.rand(B, k), idx.reshape(-1)
    index_add = lambda: torch.zeros(n, d).index_add_(0, flat, (g.unsqueeze(2) * x.unsqueeze(1)).reshape(-1, d))  # noqa: E731
    rows_of = torch.arange(B).repeat_interleave(k)
    sparse = lambda: torch.sparse.mm(torch.sparse_coo_tensor(torch.stack([flat, rows_of]), g.reshape(-1), (n, B),  # noqa: E731
                                                             check_invariants=False), x)
    print(f"encoder weight gradient: outer products + index_add {ms(index_add):.1f} ms, sparse.mm {ms(sparse):.1f} ms, "
          f"max |difference| {(index_add() - sparse()).abs().max():.2e}")


if __name__ == "__main__":
    main()
