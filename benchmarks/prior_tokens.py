"""Does the text map's token budget matter to the contrast map a study fits? The study's map is the text map of the
layer pair (``STUDY_HARVEST``: 20,000 tokens of ``lrt:text``) refitted on the shipped pool's differences, shrunk
toward the text map (λ by leave-one-family-out). The README asks for ~50 × d_S tokens for a stable map (45k for the
0.5B's 896) and the study takes fewer. This measures, at one layer pair, cos(A·v_small, v_native) of the pool's 33
vectors (balanced means, as `lrt steer` computes them) — each through maps fitted *without its whole family*, as
``map_pool_compare.py`` does — for:

- the text map alone and the default-pool map refitted on it, with the text map from 20k tokens (the study's, read
  from the cache) and from ``--tokens`` (fitted here, saved next to it as ``text-LS-LT-tN``; a cached one fitted on
  other models or settings is refused);
- the default-pool map shrunk toward zero instead of a text map (the same λ grid): how much the prior matters at all.

    python benchmarks/prior_tokens.py --cache runs/pool --layers 14,17 --tokens 60000 --out runs/pool/prior-14-17.json

``--cache``: a study's cache folder with the layer pair's text map and pool (``map_pool_compare.py`` fills it). No
steering runs.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path

import torch

from map_pool_compare import GROUPS, cached_pool, cos, pool_args, text_map


def main() -> None:
    ap = pool_args(__doc__, "runs/prior-tokens.json")
    ap.add_argument("--tokens", type=int, default=60_000, help="the larger text map's token budget")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lrt.maps.contrast import fit_from_differences, resolve_sets
    from lrt.models.load import load_model
    from lrt.stats.balance import centre_cells

    ls, lt = (int(x) for x in args.layers.split(","))
    t0 = time.time()
    src, tgt = load_model(args.small, "float32"), load_model(args.large, "float32")
    small_prior, raw = cached_pool(Path(args.cache), ls, lt, src, tgt, args.pairs)
    big_prior = text_map(Path(args.cache) / f"text-{ls}-{lt}-t{args.tokens}", src, tgt, ls, lt, args.tokens)
    priors = {"20k": small_prior, f"{args.tokens // 1000}k": big_prior,
              "zero": replace(small_prior, A=torch.zeros_like(small_prior.A))}
    plain = {k: (dx, dy) for k, (dx, dy, _) in raw.items()}
    _, families, _ = resolve_sets(list(raw))
    vectors = {k: (centre_cells(dx, c).double().mean(0), centre_cells(dy, c).double().mean(0))   # balanced means
               for k, (dx, dy, c) in raw.items()}
    rows = []
    for fam in sorted(set(families.values())):
        rest = {k: plain[k] for k in raw if families[k] != fam}
        maps = {}
        for name, prior in priors.items():
            if name != "zero":
                maps[f"text {name}"] = prior
            maps[f"default on {name}"] = fit_from_differences(prior, rest, {k: families[k] for k in rest})
        for k in (k for k in raw if families[k] == fam):
            vs, vt = vectors[k]
            r = {"vector": k, **{m: cos(a.A.double() @ vs, vt) for m, a in maps.items()},
                 **{f"lambda {m}": a.meta["contrast"]["lambda"] for m, a in maps.items() if m.startswith("default")}}
            rows.append(r)
            print(f"{k:36s} " + "  ".join(f"{m} {r[m]:.3f}" for m in maps), flush=True)
    cols = [c for c in rows[0] if c != "vector" and not c.startswith("lambda")]
    means = {}
    for g in GROUPS + ("",):
        sel = [r for r in rows if r["vector"].startswith(g)]
        means[g.rstrip(":") or "all"] = {c: round(sum(r[c] for r in sel) / len(sel), 3) for c in cols}
        print(f"mean {g.rstrip(':') or 'all':12s} ({len(sel):2d}) " +
              "  ".join(f"{c} {v:.3f}" for c, v in means[g.rstrip(':') or 'all'].items()))
    heldout = {n: {"ridge": p.meta.get("ridge"),
                   **{k: v for k, v in p.meta.get("metrics", {}).get("heldout", {}).items()
                      if isinstance(v, (int, float))}} for n, p in priors.items() if n != "zero"}
    print("text maps' held-out metrics:", json.dumps(heldout))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"layers": [ls, lt], "tokens": args.tokens, "rows": rows, "means": means,
                                          "text_map_heldout": heldout, "seconds": round(time.time() - t0)},
                                         indent=1))


if __name__ == "__main__":
    main()
