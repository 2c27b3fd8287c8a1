"""The stitching paper's joint objective vs two independent closed-form maps, on stitched and round-trip CE.

Harvests paired rows of one layer pair, fits the closed-form up and down maps (``fit_map_pair``), trains them
jointly with the cycle terms (``lrt.maps.joint.fit_joint``, initialised from the closed-form pair, best held-out
joint loss kept) for each α, and scores every pair with ``lrt.evaluate.stitch.stitch_many`` on the same held-out
text.

    python benchmarks/stitch_joint.py --source zoo-xs --target zoo-m --layers 0:0 --tokens 60000
"""

from __future__ import annotations

import argparse

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--source", default="zoo-xs")
    ap.add_argument("--target", default="zoo-m")
    ap.add_argument("--layers", default="0:0")
    ap.add_argument("--tokens", type=int, default=60000)
    ap.add_argument("--eval-tokens", type=int, default=20000)
    ap.add_argument("--alphas", default="0.1,1")
    ap.add_argument("--steps", type=int, default=3000)
    ap.add_argument("--lr", type=float, default=1e-4)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lrt.evaluate.config import StitchConfig
    from lrt.evaluate.stitch import stitch_many
    from lrt.harvest.config import HarvestConfig
    from lrt.harvest.paired import harvest_pairs
    from lrt.maps.config import FitConfig
    from lrt.maps.fit import fit_map_pair
    from lrt.maps.joint import fit_joint, joint_loss
    from lrt.models.load import load_model

    s, t = load_model(args.source), load_model(args.target)
    ls, lt = (int(x) for x in args.layers.split(":"))
    h = HarvestConfig(tokens=args.tokens, context=128, batch_size=8, progress=False)
    up, down = fit_map_pair(s, t, ls, lt, h, FitConfig(max_norm_ratio=0))
    rows = {True: ([], []), False: ([], [])}
    for b in harvest_pairs(s, t, [ls], [lt], h):
        rows[b.heldout][0].append(b.source[ls])
        rows[b.heldout][1].append(b.target[lt])
    a, bb = torch.cat(rows[False][0]), torch.cat(rows[False][1])
    ha, hb = torch.cat(rows[True][0]), torch.cat(rows[True][1])
    pairs, names = [(up, down)], ["closed form (independent)"]
    for alpha in (float(x) for x in args.alphas.split(",")):
        u, d, hist = fit_joint(a, bb, up, down, alpha=alpha, steps=args.steps, lr=args.lr, heldout=(ha, hb))
        before = float(joint_loss((up.A, up.p), (down.A, down.p), ha, hb, alpha))
        print(f"joint α={alpha}: held-out joint loss {before:.4f} → {hist and min(x['heldout_loss'] for x in hist):.4f}",
              flush=True)
        pairs.append((u, d))
        names.append(f"joint, α={alpha}")
    res = stitch_many(s, t, pairs, StitchConfig(eval_tokens=args.eval_tokens, progress=False))
    keys = ["source→target", "target→source", "source→target→source", "target→source→target"]
    print(f"\n{args.source} L{ls} ↔ {args.target} L{lt}: CE source {res[0]['ce']['source']:.4f}, target "
          f"{res[0]['ce']['target']:.4f}, {res[0]['tokens']:,} held-out tokens")
    print(f"{'maps':28s} " + " ".join(f"{k:>22s}" for k in keys))
    for name, r in zip(names, res):
        print(f"{name:28s} " + " ".join(f"{r['ce'][k]:>12.4f} ({r['relative_increase'][k]:+.1%})" for k in keys))


if __name__ == "__main__":
    main()
