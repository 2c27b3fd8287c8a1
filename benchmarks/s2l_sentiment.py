"""One small-model SAE feature steering the large model (the LRT paper's s2l route) vs the l2l transferred vector.

On the family (zoo-xs L0 → zoo-m L0, the demo's pair): a TopK SAE on xs L0; the l2l map (states → states) and the
s2l map (xs SAE codes → m states), both on the demo's harvest; the sentiment vectors of the demo (positive −
negative review endings, train split). The s2l directions: the column of the feature whose mean code differs most
between positive and negative texts (SAEBench's class-mean-difference ranking, on the same training texts), and
the s2l image of the whole mean code difference. All evaluated on the demo's sentiment items (held-out split)
against 12 random vectors.

    python benchmarks/s2l_sentiment.py --out runs/s2l
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch

SHARED = Path(__file__).resolve().parents[2] / "shared"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sae-tokens", type=int, default=300_000)
    ap.add_argument("--map-tokens", type=int, default=60_000)
    ap.add_argument("--k", type=int, default=16)
    ap.add_argument("--latents", type=int, default=1024)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--out", default="runs/s2l")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lrt.data.concepts import concept_texts
    from lrt.evaluate.config import EvalConfig, TestSetConfig
    from lrt.harvest.capture import capture_batches, keep_mask
    from lrt.harvest.config import HarvestConfig
    from lrt.maps.fit import fit_map
    from lrt.models.load import load_model
    from lrt.pipelines.experiment import evaluate_on
    from lrt.sae.config import SAETrainConfig
    from lrt.sae.s2l import feature_direction, fit_s2l
    from lrt.sae.train import train_sae
    from lrt.steering.config import VectorConfig
    from lrt.steering.vectors import _truncate, compute_vector

    xs, m = load_model("zoo-xs"), load_model("zoo-m")
    natural = str(SHARED / "data" / "natural_text.jsonl.gz")
    sae = train_sae(xs, 0, HarvestConfig(corpus=natural, tokens=args.sae_tokens, context=128, progress=False),
                    SAETrainConfig(k=args.k, latents=args.latents, lr=1e-3, sae_batch_size=512)).sae
    h = HarvestConfig(tokens=args.map_tokens, context=128, batch_size=8, progress=False)
    l2l = fit_map(xs, m, 0, 0, h)
    s2l = fit_s2l(xs, m, sae, 0, h)
    vc = VectorConfig(progress=False)
    v_small, v_native = compute_vector(xs, 0, vc), compute_vector(m, 0, vc)
    texts = concept_texts("sentiment", vc.concept_corpus, split="train", limit=vc.max_pairs)
    codes = []
    seqs = [_truncate(xs.tokenizer, t, 256, "last") for t in texts.positive + texts.negative]
    for hs, mask in capture_batches(xs, seqs, [0], 8):
        keep = keep_mask(mask).float()[..., None]
        with torch.no_grad():
            codes.append((sae.encode(hs[0]) * keep).sum(1) / keep.sum(1))
    codes = torch.cat(codes)
    npos = len(texts.positive)
    diff = codes[:npos].mean(0) - codes[npos:].mean(0)
    f = int(diff.abs().argmax())
    vectors = {"native": v_native.vector, "l2l A·v": l2l.linear(v_small.vector),
               f"s2l feature {f}": torch.sign(diff[f]) * feature_direction(s2l, f),
               "s2l A·Δcodes": s2l.A @ diff}
    s = evaluate_on(m, 0, vectors, v_native.meta["layer_median_norm"], TestSetConfig(), EvalConfig(progress=False))
    key = "slope_monotonic" if "monotonic_range" in s else "slope"
    rnd = [abs(x) for x in s["random"]["slopes"]]
    rows = []
    for name, vec in vectors.items():
        cos = float(torch.nn.functional.cosine_similarity(vec.float(), v_native.vector.float(), dim=0))
        rows.append({"vector": name, "slope": s["curves"][name][key], "cos_native": round(cos, 4),
                     "r_odd": s.get("comparison", {}).get(name, {}).get("mean_r_odd")})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = {"feature": f, "feature_code_diff": float(diff[f]), "s2l_r2": s2l.meta["metrics"]["heldout"].get("r2"),
           "l2l_r2": l2l.meta["metrics"]["heldout"].get("r2"), "s2l_ridge": s2l.meta["ridge"],
           "random_abs_slopes": {"max": max(rnd), "mean": sum(rnd) / len(rnd)}, "rows": rows,
           "sae_heldout_fvu": sae.meta.get("steps")}
    (out / "results.json").write_text(json.dumps(res, indent=2))
    print(f"s2l map R² {res['s2l_r2']} (ridge {res['s2l_ridge']}), l2l R² {res['l2l_r2']}; feature {f} "
          f"(code diff {res['feature_code_diff']:+.3f}); random |slope| max {max(rnd):.3f} mean {sum(rnd)/len(rnd):.3f}")
    for r in rows:
        print(f"{r['vector']:20s} slope {r['slope']:7.3f}  cos to native {r['cos_native']:+.3f}  r odd {r['r_odd']}")


if __name__ == "__main__":
    main()
