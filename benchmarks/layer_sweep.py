"""Layer-pair sweep of a sentiment transfer: map quality, cosine to native, slopes, random slopes, r of odd shifts.

    python benchmarks/layer_sweep.py --source zoo-xs --target zoo-m --pairs 0:0,0:1,0:2,1:2,1:3
    python benchmarks/layer_sweep.py --pairs 1:2 --concept-corpus ../shared/data/natural_text.jsonl.gz --limit 1000
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "src"))


def main() -> None:
    from lrt import zoo
    from lrt.data.concepts import concept_texts, sentiment_items
    from lrt.evaluate.config import EvalConfig, default_alphas
    from lrt.evaluate.steering import evaluate_vectors
    from lrt.harvest import HarvestConfig
    from lrt.maps.fit import fit_map
    from lrt.models.load import load_model
    from lrt.steering.transfer import transfer_vector
    from lrt.steering.vectors import text_vector

    ap = argparse.ArgumentParser()
    ap.add_argument("--source", default="zoo-xs")
    ap.add_argument("--target", default="zoo-m")
    ap.add_argument("--pairs", default="0:0,0:1,0:2,1:2,1:3")
    ap.add_argument("--concept-corpus", default=None, help="default: the shipped 400-review sample")
    ap.add_argument("--limit", type=int, default=200, help="reviews per side")
    ap.add_argument("--alpha-max", type=float, default=0.25)
    ap.add_argument("--tokens", type=int, default=60_000)
    a = ap.parse_args()
    src, tgt = load_model(a.source), load_model(a.target)
    corpus = a.concept_corpus or str(zoo.review_sample())
    texts = concept_texts("sentiment", corpus, split="train" if a.concept_corpus else None, limit=a.limit)
    items = sentiment_items(tgt.tokenizer, str(zoo.heldout_text()), lowercase=True)
    print(f"{a.source} → {a.target}: {len(texts.positive)}+{len(texts.negative)} reviews, {len(items)} items, "
          f"α ±{a.alpha_max}")
    print(f"{'pair':<7} {'R²':>5} {'cos':>5} {'native':>7} {'transf':>7} {'random slopes (sorted)':<48} {'r odd':>6}")
    for pair in a.pairs.split(","):
        ls, lt = (int(x) for x in pair.split(":"))
        hc = HarvestConfig(corpus=str(zoo.heldout_text()), tokens=a.tokens, context=128, batch_size=16,
                           progress=False)
        m = fit_map(src, tgt, ls, lt, hc)
        vs, vn = text_vector(src, texts, ls), text_vector(tgt, texts, lt)
        vt = transfer_vector(vs, m)
        r = evaluate_vectors(tgt, lt, items, {"native": vn.vector, "transferred_direction": vt.vector},
                             m.meta["norms"]["target"]["median"],
                             EvalConfig(alphas=default_alphas(a.alpha_max), n_random=12, bootstrap=50))
        c = r["curves"]
        cos = float(torch.nn.functional.cosine_similarity(vt.vector, vn.vector, dim=0))
        rnd = " ".join(f"{s:+.2f}" for s in sorted(r["random"]["slopes"]))
        print(f"{pair:<7} {m.meta['metrics']['heldout']['r2']:>5.2f} {cos:>5.2f} {c['native']['slope']:>7.2f} "
              f"{c['transferred_direction']['slope']:>7.2f} {rnd:<48} "
              f"{r['comparison']['transferred_direction']['mean_r_odd']:>6.2f}", flush=True)


if __name__ == "__main__":
    main()
