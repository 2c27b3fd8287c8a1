"""Which map carries a steering vector best, for vectors in formats nobody tuned for? cos(A·v_small, v_native) for
three maps, each judged on vectors of a behaviour it never saw:

- ``text``: the closed-form map on natural text (the study's text map);
- ``recipe``: the previous recipe, the text map refitted on the *other six* CAA behaviours' A/B sets only;
- ``default``: the text map refitted on the pool shipped with lrt (`--contrast-sets default`) without the
  behaviour's family (all four of its answer formats).

Vectors: CAA mean differences of ``--pairs`` pairs on both models, for each of the seven behaviours in four answer
formats (A/B letters, Yes/No, persona-style, free text), and the sentiment text contrast (pooled states of
positive minus negative reviews). Also the default map's outlook (`lrt.maps.contrast.transfer_outlook`): does its
expected cosine rank the vectors like the measured one?

    python benchmarks/map_pool_compare.py --study runs/study-qwen --out runs/map-pool-compare.json

Reuses the study's cached text map and pool differences (``STUDY/cache``) of the layer pair; no steering runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

BEHAVIOURS = ("coordinate-other-ais", "corrigible-neutral-HHH", "hallucination", "myopic-reward", "refusal",
              "survival-instinct", "sycophancy")
FORMS = ("caa", "caa-yesno", "caa-persona", "caa-text")
MODELS = Path.home() / ".cache" / "lrt-models"


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", default=str(MODELS / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--large", default=str(MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--study", required=True, help="a study directory whose cache holds the layer pair's text map "
                    "and pool differences")
    ap.add_argument("--layers", default="11,13", help="source,target layer (a pair cached by the study)")
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/map-pool-compare.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from safetensors.torch import load_file

    from lrt.data.concepts import concept_texts
    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.maps.affine import AffineMap
    from lrt.maps.contrast import answer_differences, fit_from_differences, resolve_sets, transfer_outlook, _pooled
    from lrt.models.load import load_model
    from lrt.stats.balance import Balance

    ls, lt = (int(x) for x in args.layers.split(","))
    cache = Path(args.study) / "cache"
    prior = AffineMap.load(cache / f"text-{ls}-{lt}")
    raw = load_file(str(cache / f"pool-{ls}-{lt}.safetensors"))
    pool = {k[:-2]: (raw[k], raw[k[:-2] + "|y"]) for k in raw if k.endswith("|x")}
    _, families, _ = resolve_sets(list(pool))
    t0 = time.time()
    src, tgt = load_model(args.small, "float32"), load_model(args.large, "float32")
    vectors = {}
    for b in BEHAVIOURS:
        for f in FORMS:
            items = contrast_items(src.tokenizer, load_contrasts(f"{f}:{b}", args.pairs), chat=True)
            bal = Balance(items)                      # as lrt steer computes them: each matching answer weighs alike
            vectors[f"{f}:{b}"] = tuple(bal.mean(answer_differences(lm, layer, items).T)
                                        for lm, layer in ((src, ls), (tgt, lt)))
        print(f"{b}: vectors in {len(FORMS)} formats ({time.time() - t0:.0f} s)", flush=True)
    tc = concept_texts("sentiment", "lrt:reviews", split="train", limit=args.pairs)
    vectors["concept:sentiment"] = tuple(_pooled(lm, layer, tc.positive).mean(0) - _pooled(lm, layer, tc.negative).mean(0)
                                         for lm, layer in ((src, ls), (tgt, lt)))
    rows = []
    for name, (vs, vt) in vectors.items():
        fam = families.get(name) or ("concept:sentiment" if name.startswith("concept:") else
                                     "caa:" + name.split(":")[1])
        recipe_sets = {f"caa:{b}": pool[f"caa:{b}"] for b in BEHAVIOURS if f"caa:{b}" in pool and f"caa:{b}" != fam}
        recipe = fit_from_differences(prior, recipe_sets, {k: k for k in recipe_sets})
        kept = {k: v for k, v in pool.items() if families[k] != fam}
        default = fit_from_differences(prior, kept, {k: families[k] for k in kept})
        o = transfer_outlook(default, vs)
        r = {"vector": name, "family": fam, "cos_text": cos(prior.A @ vs, vt), "cos_recipe": cos(recipe.A @ vs, vt),
             "cos_default": cos(default.A @ vs, vt), "expected_cos_default": o["expected_cos"],
             "nearest_set": o["nearest_set"], "nearest_cos": o["nearest_cos"], "basis_share": o["basis_share"],
             "lambda_default": default.meta["contrast"]["lambda"], "lambda_recipe": recipe.meta["contrast"]["lambda"]}
        rows.append(r)
        print(f"{name:40s} text {r['cos_text']:.3f}  recipe {r['cos_recipe']:.3f}  default {r['cos_default']:.3f}  "
              f"(expected {r['expected_cos_default'] if r['expected_cos_default'] is None else round(r['expected_cos_default'], 3)}, nearest {r['nearest_set']})",
              flush=True)
    means = {}
    for f in FORMS + ("concept",):
        sel = [r for r in rows if r["vector"].split(":")[0] == f]
        means[f] = {k: sum(r[k] for r in sel) / len(sel) for k in ("cos_text", "cos_recipe", "cos_default")}
        print(f"mean {f:10s} " + "  ".join(f"{k} {v:.3f}" for k, v in means[f].items()))
    from lrt.pipelines.study_cache import spearman

    ok = [r for r in rows if r["expected_cos_default"] is not None]
    rho = spearman([r["expected_cos_default"] for r in ok], [r["cos_default"] for r in ok])
    print(f"Spearman(expected cos, measured cos) over {len(ok)} vectors: {rho}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"layers": [ls, lt], "pairs": args.pairs, "rows": rows, "means": means,
                                          "spearman_expected_vs_measured": rho,
                                          "seconds": round(time.time() - t0)}, indent=1))


if __name__ == "__main__":
    main()
