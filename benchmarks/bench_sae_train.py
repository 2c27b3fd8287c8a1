"""SAE training throughput: lrt's TopK step vs EleutherAI sparsify's and SAELens's own, side by side.

Same activations (random rows with a heavy-tailed spectrum, fixed seed), width, latents, k, batch and Adam; each
trainer's own step (forward, loss, backward, its decoder constraint, optimiser), each in its own subprocess (peak
RSS is its own). Needs the interop extra (pip install -e '.[interop]'); a missing library is reported, not faked.

    python benchmarks/bench_sae_train.py --d 256 --latents 4096 --k 32 --batch 1024 --steps 40
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import time


def rows(d: int, n: int, seed: int = 0):
    import torch

    g = torch.Generator().manual_seed(seed)
    scale = torch.linspace(1, 0.05, d)
    return (torch.randn(n, d, generator=g) * scale) @ torch.linalg.qr(torch.randn(d, d, generator=g))[0] + 1.0


def run(which: str, d: int, n_lat: int, k: int, batch: int, steps: int, threads: int) -> dict:
    import torch

    torch.set_num_threads(threads)
    torch.manual_seed(0)
    data = rows(d, batch * 8)
    if which == "lrt":
        from lrt.sae.config import SAETrainConfig
        from lrt.sae.train import _Trainer

        tr = _Trainer(SAETrainConfig(k=k, latents=n_lat, lr=2e-4, sae_batch_size=batch), d, {})
        tr.start(data)
        step = tr.step
    elif which == "sparsify":
        from sparsify import SparseCoder, SparseCoderConfig

        sae = SparseCoder(d, SparseCoderConfig(k=k, num_latents=n_lat))
        opt = torch.optim.Adam(sae.parameters(), lr=2e-4)

        def step(x):
            out = sae(x)
            out.fvu.backward()
            sae.remove_gradient_parallel_to_decoder_directions()
            opt.step()
            opt.zero_grad(set_to_none=True)
            sae.set_decoder_norm_to_unit_norm()
    else:
        from sae_lens.saes.sae import TrainStepInput
        from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

        sae = TopKTrainingSAE(TopKTrainingSAEConfig(d_in=d, d_sae=n_lat, k=k, aux_loss_coefficient=0.0))
        opt = torch.optim.Adam(sae.parameters(), lr=2e-4)
        count = [0]

        def step(x):
            out = sae.training_forward_pass(TrainStepInput(sae_in=x, coefficients={}, dead_neuron_mask=None,
                                                           n_training_steps=count[0], is_logging_step=False))
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            count[0] += 1
    for i in range(3):
        step(data[i * batch:(i + 1) * batch])
    t0 = time.perf_counter()
    for i in range(steps):
        j = i % 8
        step(data[j * batch:(j + 1) * batch])
    dt = time.perf_counter() - t0
    return {"trainer": which, "tokens_per_s": round(steps * batch / dt), "peak_rss_mib":
            round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--d", type=int, default=256)
    ap.add_argument("--latents", type=int, default=4096)
    ap.add_argument("--k", type=int, default=32)
    ap.add_argument("--batch", type=int, default=1024)
    ap.add_argument("--steps", type=int, default=40)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--one", default=None, help=argparse.SUPPRESS)
    a = ap.parse_args()
    if a.one:
        print(json.dumps(run(a.one, a.d, a.latents, a.k, a.batch, a.steps, a.threads)))
        return
    print(f"d {a.d}, latents {a.latents}, k {a.k}, batch {a.batch}, {a.steps} steps, {a.threads} thread(s)")
    for which in ("lrt", "sparsify", "sae_lens"):
        p = subprocess.run([sys.executable, __file__, "--one", which, "--d", str(a.d), "--latents", str(a.latents),
                            "--k", str(a.k), "--batch", str(a.batch), "--steps", str(a.steps), "--threads",
                            str(a.threads)], capture_output=True, text=True)
        if p.returncode:
            print(f"{which:10s} failed: {p.stderr.strip().splitlines()[-1] if p.stderr.strip() else p.returncode}")
            continue
        r = json.loads(p.stdout.strip().splitlines()[-1])
        print(f"{which:10s} {r['tokens_per_s']:>9,} tokens/s   peak RSS {r['peak_rss_mib']:,} MiB", flush=True)


if __name__ == "__main__":
    main()
