"""What each part of the refitted start is worth: variants of compare-init on cached activations.

    python benchmarks/sae_init_variants.py '{"tag": "transferred", "rows": 0}' '{"tag": "decoder refit"}' \
        '{"tag": "γ 0.375", "gamma": 0.375}' '{"tag": "γ 0.5", "gamma": 0.5}' '{"tag": "warm-up", "warm": 100}'

zoo-xs L0 → zoo-m L0 with the stitching recipe (lr 1e-4 unless given), TopK k 16, 1,024 latents, batches of 512:
the small SAE on --small-tokens, maps on 20k tokens, both large SAEs (scratch and the variant's start) on
--tokens of cached zoo-m activations (cached under --cache on the first run). Each variant (a JSON object):
``rows`` (decoder-refit rows, 0: none; default 50,800), ``gamma`` (encoder completion at this fixed γ, 0: none),
``scale`` ("latent" as lrt.sae.transfer.complete_encoder, or "global": the median of the per-latent scales),
``warm`` (a linear lr warm-up over that many steps, on both runs), ``lr``. Prints the saving before charges
(FLOPs to scratch's final held-out FVU), the start's FVU and the refit's FLOPs; appends to CACHE/log.jsonl.
"""

from __future__ import annotations

import argparse
import json
from dataclasses import replace
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("variants", nargs="+", help="JSON objects, one per variant")
    ap.add_argument("--tokens", type=int, default=2_000_000)
    ap.add_argument("--small-tokens", type=int, default=2_000_000)
    ap.add_argument("--cache", default="runs/sae-variants")
    ap.add_argument("--threads", type=int, default=2)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lrt.harvest.config import HarvestConfig
    from lrt.harvest.paired import stream_rows
    from lrt.maps.config import FitConfig
    from lrt.maps.fit import fit_map_pair
    from lrt.models.load import load_model
    from lrt.pipelines.sae_init import flops_to_reach
    from lrt.sae import train as T
    from lrt.sae.config import SAETrainConfig
    from lrt.sae.transfer import complete_encoder, encoder_basis, refit_decoder, transfer_sae, unit_decoder_copy

    cache = Path(args.cache)
    cache.mkdir(parents=True, exist_ok=True)
    H = lambda n, seed=0: HarvestConfig(corpus=str(SHARED / "data" / "natural_text.jsonl.gz"), tokens=n,  # noqa: E731
                                        context=128, batch_size=8, progress=False, seed=seed)
    small, large = load_model("zoo-xs"), load_model("zoo-m")

    def cached(lm, n, seed, name):
        f = cache / f"{name}-{n}.safetensors"
        if not f.exists():
            items = [(r, h) for r, h in stream_rows(lm, 0, H(n, seed)) if r is not None]
            save_file({**{f"r{i}": r.contiguous() for i, (r, _) in enumerate(items)},
                       **{f"h{i}": torch.tensor(h) for i, (_, h) in enumerate(items)}}, f)
        t = load_file(f)
        return [(t[f"r{i}"], bool(t[f"h{i}"])) for i in range(len(t) // 2)]

    large_items, small_items = cached(large, args.tokens, 0, "large"), cached(small, args.small_tokens, 1, "small")
    warm_steps = {"n": 0}
    step = T._Trainer.step

    def warmed(self, x):                                   # a linear lr warm-up for the stitching recipe
        if warm_steps["n"] and self.step_no <= warm_steps["n"]:
            for g in self.opt.param_groups:
                g["lr"] = self.lr * min(1.0, (self.step_no + 1) / warm_steps["n"])
        return step(self, x)

    T._Trainer.step = warmed
    train = lambda items, d, cfg, init=None: T._train(lambda s: iter(items[s:]), d, {"model": "x", "layer": "0"},  # noqa: E731
                                                      {}, cfg, init, False, None, False, 0)
    cfg = SAETrainConfig(recipe="stitching", k=16, latents=1024, lr=1e-4, sae_batch_size=512, eval_every=10,
                         delta_loss_tokens=0)
    small_sae = train(small_items, small.d_model, cfg).sae
    up, down = fit_map_pair(small, large, 0, 0, H(20_000, 2), FitConfig(shuffled_control=False))
    start0 = transfer_sae(small_sae, up, down)
    ev = torch.cat([r for r, h in large_items if h])[:4096]
    scratch: dict = {}
    for spec in args.variants:
        v = {"tag": "", "rows": 50_800, "gamma": 0.0, "scale": "latent", "warm": 0, "lr": 1e-4, **json.loads(spec)}
        warm_steps["n"] = v["warm"]
        c = replace(cfg, lr=v["lr"])
        key = (v["warm"], v["lr"])
        if key not in scratch:
            scratch[key] = train(large_items, large.d_model, c).history
        s0, info = (refit_decoder(start0, iter(large_items), v["rows"], FitConfig(shuffled_control=False))
                    if v["rows"] else (unit_decoder_copy(start0, {}), {}))
        if v["rows"] and info.get("encoder_completion"):      # undo the refit's own γ choice: this variant's γ
            s0.W_enc.data = unit_decoder_copy(start0, {}).W_enc.data.clone()
        if v["gamma"]:
            basis = encoder_basis(s0)
            if v["scale"] == "global":
                E, Dd = s0.W_enc.detach().double(), s0.W_dec.detach().double()
                inside = (Dd @ basis) @ basis.T
                s = ((E.T * inside).sum(1) / inside.pow(2).sum(1).clamp_min(0.01)).median()
                s0 = replace_encoder(s0, (E + v["gamma"] * s * (Dd - inside).T).float())
            else:
                s0 = complete_encoder(s0, v["gamma"], basis)
        hist = train(large_items, large.d_model, c, init=s0).history
        target = scratch[key][-1]["heldout_fvu"]
        a, b = flops_to_reach(scratch[key], target), flops_to_reach(hist, target)
        res = {**v, "start_fvu": round(s0.fvu(ev), 4), "target": target, "final": hist[-1]["heldout_fvu"],
               "saving_before_charges": None if not b else round(1 - b / a, 4), "refit_flops": info.get("flops")}
        print(json.dumps(res), flush=True)
        with open(cache / "log.jsonl", "a") as f:
            f.write(json.dumps(res) + "\n")


def replace_encoder(sae, W_enc: torch.Tensor):
    from lrt.sae.model import SparseAutoencoder

    return SparseAutoencoder.from_tensors({**sae.tensors(), "W_enc": W_enc}, sae.architecture, sae.k,
                                          sae.apply_b_dec_to_input, dict(sae.meta))


if __name__ == "__main__":
    main()
