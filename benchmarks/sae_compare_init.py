"""A transferred SAE as the initialisation of the large model's SAE: FLOPs to the same FVU, scratch vs transferred.

    python benchmarks/sae_compare_init.py --small zoo-xs --large zoo-m --layers 0:0 --out runs/sae-init

Small SAE on ``--small-tokens`` tokens, maps on ``--map-tokens``, both large SAEs on ``--large-tokens`` (same
recipe, seed and token stream). Writes results.json and fvu_vs_flops.png; see lrt.pipelines.sae_init.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", default="zoo-xs")
    ap.add_argument("--large", default="zoo-m")
    ap.add_argument("--layers", default="0:0")
    ap.add_argument("--corpus", default=str(SHARED / "data" / "natural_text.jsonl.gz"))
    ap.add_argument("--small-tokens", type=int, default=100_000)
    ap.add_argument("--map-tokens", type=int, default=60_000)
    ap.add_argument("--large-tokens", type=int, default=400_000)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--latents", type=int, default=1024)
    ap.add_argument("--lr", type=float, default=1e-3, help="Adam lr (0: the recipe's)")
    ap.add_argument("--recipe", default="stitching")
    ap.add_argument("--refit-tokens", type=int, default=0, help="also the transferred SAE with its decoder refitted")
    ap.add_argument("--batch", type=int, default=512)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--no-control", action="store_true", help="fit the maps without the shuffled-row control")
    ap.add_argument("--out", default="runs/sae-init")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lrt.harvest.config import HarvestConfig
    from lrt.models.load import load_model
    from lrt.pipelines.sae_init import compare_init
    from lrt.report.sae import init_curves_figure
    from lrt.sae.config import SAETrainConfig

    small, large = load_model(args.small), load_model(args.large)
    a, b = (int(x) for x in args.layers.split(":"))
    H = lambda n, seed=0: HarvestConfig(corpus=args.corpus, tokens=n, context=128, batch_size=8,  # noqa: E731
                                        progress=False, seed=seed)
    cfg = SAETrainConfig(k=args.k, latents=args.latents, lr=args.lr or None, recipe=args.recipe,
                         sae_batch_size=args.batch, eval_every=10, delta_loss_tokens=0)
    from lrt.maps.config import FitConfig

    r = compare_init(small, large, a, b, H(args.small_tokens, 1), H(args.map_tokens, 2), H(args.large_tokens), cfg, cfg,
                     map_fit=FitConfig(shuffled_control=not args.no_control), refit_tokens=args.refit_tokens)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "results.json").write_text(json.dumps({"args": vars(args), **r}, indent=2))
    print(f"target FVU {r['target_fvu']:.4f}; zero-shot FVU of the transferred SAE {r['zero_shot_fvu']:.4f}; "
          f"small SAE {r['small_sae'].get('heldout_fvu')}; maps R² up {r['maps']['up_r2']:.3f} down "
          f"{r['maps']['down_r2']:.3f}")
    if r.get("decoder_refit"):
        print("decoder refit:", r["decoder_refit"])
    print(f"{'accounting':24s} {'charge':>10s} {'scratch':>10s} {'transferred':>12s} {'saving':>7s} "
          f"{'refit':>10s} {'saving':>7s}")
    f = lambda v: "—" if v is None else f"{v:.3g}"  # noqa: E731
    for name, acc in r["accountings"].items():
        ref = acc.get("refit", {})
        print(f"{name:24s} {f(r['charges'][name]):>10s} {f(acc['scratch_flops']):>10s} "
              f"{f(acc['transferred_flops']):>12s} {f(acc['saving']):>7s} {f(ref.get('flops')):>10s} "
              f"{f(ref.get('saving')):>7s}")
    print("wall seconds to the target FVU (maps and refit charged):",
          {k: None if v is None else round(v, 1) for k, v in r["wall_seconds_to_target"].items()},
          f"(maps {r['seconds']['maps']} s, refit {(r.get('decoder_refit') or {}).get('seconds')} s)")
    fig = init_curves_figure(r)
    fig.savefig(out / "fvu_vs_flops.png", dpi=110)


if __name__ == "__main__":
    main()
