"""Does a vector from more pairs get a higher split-half cosine and a higher cos(A·v, native)? Qwen2.5-Coder 0.5B
L14 → 1.5B L17, the default-pool map without the vector's family, from the cache `benchmarks/map_pool_compare.py`
fills (runs/pool):

    python benchmarks/more_pairs.py caa:sycophancy=240 caa-persona:sycophancy=240     # ~12 min on 2 CPU cores

Each SET=N computes N pairs' differences on both models once and reports the first 60, 120 and N of them.
"""

from __future__ import annotations

import sys
from pathlib import Path

import torch

LS, LT = 14, 17
MODELS = Path.home() / ".cache" / "lrt-models"
CACHE = Path("runs/pool")


def main() -> None:
    from safetensors.torch import load_file

    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.data.registry import family_of
    from lrt.maps.affine import AffineMap
    from lrt.maps.contrast import answer_differences, fit_from_differences, resolve_sets
    from lrt.models.load import load_model
    from lrt.stats.balance import Balance, split_half_cos

    torch.set_num_threads(2)
    src = load_model(str(MODELS / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"), "float32")
    tgt = load_model(str(MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"), "float32")
    prior = AffineMap.load(CACHE / f"text-{LS}-{LT}")
    raw = load_file(str(CACHE / f"pool-{LS}-{LT}.safetensors"))
    pool = {k[:-2]: (raw[k], raw[k[:-2] + "|y"]) for k in raw if k.endswith("|x")}
    _, fams, _ = resolve_sets(list(pool))
    for spec, n in ((s, int(n)) for s, n in (a.split("=") for a in sys.argv[1:])):
        fam = family_of(spec, "contrast")
        kept = {k: v for k, v in pool.items() if fams[k] != fam}
        A = fit_from_differences(prior, kept, {k: fams[k] for k in kept}).A
        recs = load_contrasts(spec, n)
        ix, iy = contrast_items(src.tokenizer, recs, True), contrast_items(tgt.tokenizer, recs, True)
        dx, dy = answer_differences(src, LS, ix), answer_differences(tgt, LT, iy)
        for m in sorted({min(60, n), min(120, n), n}):
            bal = Balance(ix[:m])
            vs, vt = bal.mean(dx[:m].T), bal.mean(dy[:m].T)
            c = float(torch.nn.functional.cosine_similarity((A @ vs).double(), vt.double(), dim=0))
            hs, ht = (split_half_cos(d[:m], bal.cells) for d in (dx, dy))      # None: a cell of one pair
            print(f"{spec} pairs {m}: split-half src {hs if hs is None else round(hs, 2)} "
                  f"tgt {ht if ht is None else round(ht, 2)}  cos(A·v, native) {c:.3f}  |v_t| {vt.norm():.2f}",
                  flush=True)


if __name__ == "__main__":
    main()
