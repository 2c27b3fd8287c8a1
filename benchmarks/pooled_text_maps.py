"""Which map carries a vector of *pooled text states*? cos(A·v_small, v_native) through three maps, each fitted
without the vector's family:

- ``text``: the closed-form map on natural text (the study's text map, the contrast map's prior);
- ``default``: the text map refitted on the pool shipped with lrt (``--contrast-sets default``: answer-token
  differences, plus one pooled text set, concept:sentiment);
- ``default+pooled``: the same pool plus pooled-text sets of the *other* families (the free-text CAA answers of
  the other behaviours, the Brown genre contrasts other than the vector's own, sentiment) — does the pool carry
  pooled vectors once it holds pooled differences?

Vectors: each text's states averaged over its tokens (``lrt.maps.contrast.mean_pooled``, the last 128 tokens —
as the pool's ``concept:`` sets are computed; ``lrt steer --concept`` pools the same way over up to 256): each
CAA behaviour's free-text answers (matching vs not, the answer text alone: ``caa-text:B``, its first ``--pairs``),
four Brown genre contrasts (``genre:X:Y`` on ``lrt:text``) and sentiment (``lrt:reviews``). The pool sets' pooled
differences are per pair (positive text − negative text, the same texts). Reads a study's cache (the layer
pair's text map and pool differences, through ``map_pool_compare.cached_pool``: what the cache lacks is computed
and saved, a cache made with other settings refused); no steering runs.

    python benchmarks/pooled_text_maps.py --cache runs/pool --layers 14,17 \\
        --out runs/pool/pooled-text-14-17.json
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import torch

from map_pool_compare import BEHAVIOURS, cached_pool, cos, pool_args

GENRES = ("a:j", "f:n", "b:k", "h:l")     # news/learned, lore/adventure, editorial/general fiction, gov./mystery


def texts_of(name: str, pairs: int):
    """(positive texts, negative texts) of a pooled vector: ``caa-text:B`` answers, ``genre:X:Y``, ``sentiment``."""
    from lrt.data.concepts import concept_texts
    from lrt.data.contrasts import load_contrasts

    if name.startswith("caa-text:"):
        cs = load_contrasts(name, pairs, role="contrast")
        return [c.positive.strip() for c in cs], [c.negative.strip() for c in cs]
    corpus = "lrt:reviews" if name == "sentiment" else "lrt:text"
    tc = concept_texts(name, corpus, split="train", limit=pairs)
    n = min(len(tc.positive), len(tc.negative))
    return tc.positive[:n], tc.negative[:n]


def family(name: str) -> str:
    return f"caa:{name.split(':', 1)[1]}" if name.startswith("caa-text:") else (
        "concept:sentiment" if name == "sentiment" else name)


def main() -> None:
    args = pool_args(__doc__, "runs/pooled-text.json", layers="18,21").parse_args()
    torch.set_num_threads(args.threads)

    from lrt.maps.contrast import fit_from_differences, mean_pooled, resolve_sets
    from lrt.models.load import load_model
    from lrt.stats.balance import split_half_cos

    ls, lt = (int(x) for x in args.layers.split(","))
    t0 = time.time()
    src, tgt = load_model(args.small, "float32"), load_model(args.large, "float32")
    prior, pool = cached_pool(Path(args.cache), ls, lt, src, tgt, args.pairs)   # filled where the cache lacks it
    plain = {s: (dx, dy) for s, (dx, dy, _) in pool.items()}
    _, pool_fam, _ = resolve_sets(list(plain))
    names = [f"caa-text:{b}" for b in BEHAVIOURS] + [f"genre:{g}" for g in GENRES] + ["sentiment"]
    pooled = {}                                         # per-pair pooled differences on both models
    for name in names:
        pos, neg = texts_of(name, args.pairs)
        pooled[name] = (mean_pooled(src, ls, pos) - mean_pooled(src, ls, neg),
                        mean_pooled(tgt, lt, pos) - mean_pooled(tgt, lt, neg))
        print(f"{name}: {len(pos)} pairs ({time.time() - t0:.0f} s)", flush=True)
    rows = []
    for name in names:
        fam = family(name)
        dx, dy = pooled[name]
        vs, vt = dx.double().mean(0), dy.double().mean(0)
        rest = {k: plain[k] for k in plain if pool_fam[k] != fam}
        rest_fam = {k: pool_fam[k] for k in rest}
        extra = {f"pooled:{k}": pooled[k] for k in names if family(k) != fam}
        maps = {"text": prior, "default": fit_from_differences(prior, rest, rest_fam),
                "default+pooled": fit_from_differences(prior, rest | extra,
                                                       rest_fam | {k: family(k[7:]) for k in extra})}
        r = {"vector": name, "family": fam, **{f"cos_{m}": cos(a.A.double() @ vs, vt) for m, a in maps.items()},
             "split_half_cos": split_half_cos(dx, torch.zeros(len(dx), dtype=torch.long)),
             "lambda_default": maps["default"].meta["contrast"]["lambda"],
             "lambda_default+pooled": maps["default+pooled"].meta["contrast"]["lambda"]}
        rows.append(r)
        print(f"{name:36s} " + "  ".join(f"{m} {r['cos_' + m]:.3f}" for m in maps)
              + f"  (split half {r['split_half_cos']:.2f}, λ {r['lambda_default']} / {r['lambda_default+pooled']})",
              flush=True)
    means = {m: round(sum(r[f"cos_{m}"] for r in rows) / len(rows), 3) for m in ("text", "default", "default+pooled")}
    print("mean over", len(rows), "pooled vectors:", means)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"layers": [ls, lt], "pairs": args.pairs, "rows": rows, "means": means,
                                          "seconds": round(time.time() - t0)}, indent=1))


if __name__ == "__main__":
    main()
