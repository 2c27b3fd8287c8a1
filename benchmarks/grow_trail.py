"""How many vector pairs would ``lrt study`` take, and why? The --grow-native trail of each behaviour at a given
layer pair, without running a study: ``lrt.pipelines.study_items.grow_pairs`` on the real models, the small
model's vector at the source layer and the large model's own at the target layer, doubling from --pairs up to
--max-pairs while either's split-half cosine is below 0.5 (the study's rule, with its defaults; ``--chat`` unless --no-chat).

    python benchmarks/grow_trail.py caa-persona:hallucination@11,13 caa:refusal@14,17 --out runs/grow-trail.json

Each model's pairs run once (shared prefix), so a behaviour costs what its vectors cost in the study.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

from map_pool_compare import MODELS


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("behaviours", nargs="+", help="NAME@SOURCE_LAYER,TARGET_LAYER (a study behaviour: caa:refusal, "
                                                  "caa-persona:hallucination, GEN=TEST files)")
    ap.add_argument("--small", default=str(MODELS / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--large", default=str(MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--max-pairs", type=int, default=240)
    ap.add_argument("--test-items", type=int, default=50, help="as the study's (the generate set must spare them)")
    ap.add_argument("--no-chat", dest="chat", action="store_false", help="no chat template (base models)")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default="runs/grow-trail.json")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lrt.models.load import load_model
    from lrt.pipelines.config import StudyConfig
    from lrt.pipelines.study_items import generate_items, grow_pairs, parse_behaviour

    specs = []
    for spec in args.behaviours:                # every spec checked before the models load
        name, _, layers = spec.rpartition("@")
        ls, lt = (int(x) for x in layers.split(","))
        specs.append((spec, parse_behaviour(name), ls, lt))
    src, tgt = load_model(args.small), load_model(args.large)
    cfg = StudyConfig(chat=args.chat, pairs=args.pairs, max_pairs=args.max_pairs, test_items=args.test_items)
    out = {"small": src.name, "large": tgt.name, "pairs": args.pairs, "max_pairs": args.max_pairs, "trails": {}}
    for spec, b, ls, lt in specs:
        t = time.time()
        gen_s = generate_items(b, src.tokenizer, cfg)
        gen_t = gen_s if src.tokenizer.get_vocab() == tgt.tokenizer.get_vocab() else \
            generate_items(b, tgt.tokenizer, cfg)
        g = grow_pairs(src, gen_s, b, ls, cfg, log=lambda m: None, native=(tgt, gen_t, lt))
        out["trails"][spec] = {"pairs": g.pairs, "trail": g.trail, "seconds": round(time.time() - t, 1)}
        steps = " → ".join(f"{s['pairs']} ({s['split_half_cos']} / {s['native_split_half_cos']})" for s in g.trail)
        print(f"{spec}: {steps}  [pairs (small / native split-half cos); {time.time() - t:.0f} s]", flush=True)
        Path(args.out).parent.mkdir(parents=True, exist_ok=True)
        Path(args.out).write_text(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
