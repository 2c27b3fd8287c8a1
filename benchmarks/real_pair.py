"""Transfer on a real same-family instruct pair: Qwen2.5-Coder-0.5B-Instruct → 1.5B-Instruct (GGUF, CPU).

For each CAA behaviour: CAA vectors (chat format) on both models, two maps — natural text, and natural text mixed
with chat-formatted A/B prompts of the *other* behaviours (never the evaluated one's test items) — transfer
variants, and an evaluation on the behaviour's held-out A/B test items against ≥ 8 random vectors, with the α range
chosen from the native curve. Prints and writes one table row per (behaviour, method).

    bash ../shared/scripts/get-qwen-pair.sh                  # once: ~1.4 GB into ~/.cache/lrt-models
    python benchmarks/real_pair.py --behaviours refusal,sycophancy --pairs 60 --items 24 --out runs/real-pair

Reduced protocol by default (--positions answer, 60 pairs, 24 items, 8k map tokens); --positions all and more
items/pairs for the record. Results: docs/real-pair.md.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

SHARED = Path(__file__).resolve().parents[2] / "shared"
CAA = SHARED / "data" / "caa"
MODELS = Path.home() / ".cache" / "lrt-models"
BEHAVIOURS = ("refusal", "sycophancy", "corrigible-neutral-HHH", "hallucination", "myopic-reward",
              "survival-instinct", "coordinate-other-ais")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", default=str(MODELS / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--large", default=str(MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--source-layer", type=int, default=12)
    ap.add_argument("--target-layer", type=int, default=14)
    ap.add_argument("--behaviours", default=",".join(BEHAVIOURS))
    ap.add_argument("--pairs", type=int, default=60, help="CAA pairs per vector")
    ap.add_argument("--items", type=int, default=24, help="test items per behaviour")
    ap.add_argument("--tokens", type=int, default=8000, help="map tokens")
    ap.add_argument("--n-random", type=int, default=8)
    ap.add_argument("--positions", default="answer", choices=["answer", "all"])
    ap.add_argument("--corpus", default=str(SHARED / "data" / "natural_text.jsonl.gz"))
    ap.add_argument("--out", default="runs/real-pair")
    ap.add_argument("--threads", type=int, default=2, help="torch CPU threads")
    args = ap.parse_args()

    import torch

    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.evaluate.config import EvalConfig
    from lrt.evaluate.steering import evaluate_vectors
    from lrt.harvest.config import HarvestConfig
    from lrt.maps.fit import fit_map
    from lrt.models.load import load_model
    from lrt.steering.transfer import transfer_vector
    from lrt.steering.vectors import contrast_vector

    torch.set_num_threads(args.threads)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    src, tgt = load_model(args.small, "float32"), load_model(args.large, "float32")
    ls, lt = args.source_layer, args.target_layer
    print(f"loaded in {time.time() - t0:.0f} s: {src.n_layers} → {tgt.n_layers} blocks, L{ls} → L{lt}", flush=True)
    hc = dict(corpus=args.corpus, tokens=args.tokens, context=128, batch_size=8, progress=False)
    text_map = fit_map(src, tgt, ls, lt, HarvestConfig(**hc))
    print(f"text map: R² {text_map.meta['metrics']['heldout'].get('r2_below_q99')}, ridge {text_map.meta['ridge']}",
          flush=True)
    rows = []
    for b in args.behaviours.split(","):
        tb = time.time()
        others = [str(CAA / "generate" / o / "generate_dataset.json") for o in BEHAVIOURS if o != b]
        mix_map = fit_map(src, tgt, ls, lt, HarvestConfig(**hc, mix=others))
        gen = load_contrasts(CAA / "generate" / b / "generate_dataset.json", args.pairs)
        train = contrast_items(src.tokenizer, gen, chat=True)
        v_src = contrast_vector(src, train, ls, name=b)
        v_nat = contrast_vector(tgt, train, lt, name=b)
        test = contrast_items(tgt.tokenizer, load_contrasts(CAA / "test" / b / "test_dataset_ab.json", args.items),
                              chat=True)
        vectors = {"native": v_nat.vector}
        for tag, m in (("text", text_map), ("mix", mix_map)):
            # (a norm rescale changes nothing here: the evaluation applies unit directions × α · median norm)
            vectors[f"A·v ({tag} map)"] = transfer_vector(v_src, m, "direction").vector
        cfg = EvalConfig(alpha_search=True, n_random=args.n_random, bootstrap=200, positions=args.positions,
                         eval_batch_size=64)
        s = evaluate_vectors(tgt, lt, test, vectors, v_nat.median_norm, cfg)
        own = evaluate_vectors(src, ls, test[: max(8, args.items // 2)], {"native": v_src.vector},
                               v_src.median_norm, EvalConfig(alpha_search=True, n_random=4, bootstrap=50,
                                                             positions=args.positions))
        key = "slope_monotonic" if "monotonic_range" in s else "slope"
        rnd = [abs(x) for x in s["random"]["slopes"]]
        native = s["curves"]["native"][key]
        for name, vec in vectors.items():
            slope = s["curves"][name][key]
            cos = float(torch.nn.functional.cosine_similarity(vec.float(), v_nat.vector.float(), dim=0))
            rows.append({"behaviour": b, "vector": name, "slope": slope, "ratio_to_native": slope / native if native
                         else None, "beats_all_random": abs(slope) > max(rnd) if name != "native" else slope > max(rnd),
                         "max_abs_random": max(rnd), "mean_abs_random": sum(rnd) / len(rnd),
                         "r_odd": s.get("comparison", {}).get(name, {}).get("mean_r_odd"), "cos_native": cos,
                         "alpha_max": s["alphas"][-1], "small_own_slope": own["curves"]["native"]["slope"],
                         "map_r2_q99": (mix_map if "mix" in name else text_map).meta["metrics"]["heldout"].get(
                             "r2_below_q99")})
            r = rows[-1]
            print(f"{b:24s} {name:26s} slope {slope:7.3f} ratio {r['ratio_to_native'] or 0:5.2f} "
                  f"beats {str(r['beats_all_random']):5s} max|rand| {r['max_abs_random']:.3f} cos {cos:.2f} "
                  f"r_odd {r['r_odd'] if r['r_odd'] is None else round(r['r_odd'], 2)} α≤{r['alpha_max']}",
                  flush=True)
        print(f"{b}: {time.time() - tb:.0f} s", flush=True)
        (out / "rows.json").write_text(json.dumps({"args": vars(args), "rows": rows}, indent=2))
    print(f"total {time.time() - t0:.0f} s")


if __name__ == "__main__":
    main()
