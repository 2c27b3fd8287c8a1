"""Does a behaviour's native vector steer the large model with *another intervention*? Layers × positions × pairs,
on validation items only.

`lrt study` searches target layers with one intervention (``--positions``, every position by default) and a
stated budget of vector pairs. A behaviour it calls "not steerable here" may still steer where only the answer
position is steered, or with more pairs. This probe runs the study's own layer probe
(:func:`lrt.pipelines.layer_search.probe_layer`: the answer-balanced CAA vector of the large model, the α search
against 8 random directions, z and p of the native effect) for each (layer, positions, pairs) on validation items
drawn from the generate set's unused pairs after the largest pair count — **never a test item** (the test set's
prompts are removed by fingerprint), so a setting found here can then be judged on the test items by `lrt study`.

    python benchmarks/intervention_search.py myopic-reward --layers 9,13,17,21 --positions all,answer \
        --pairs 60,240 --validation 24
"""

import argparse
import json
import time
from pathlib import Path

import torch

M = Path.home() / ".cache" / "lrt-models"


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("behaviour", help="a CAA behaviour (NAME or caa:NAME) or another shipped A/B set name (mmlu, caa-persona:NAME)")
    ap.add_argument("--layers", default="9,13,17,21")
    ap.add_argument("--positions", default="all,answer")
    ap.add_argument("--pairs", default="60,240")
    ap.add_argument("--validation", type=int, default=24)
    ap.add_argument("--search-random", type=int, default=8)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--batch-size", type=int, default=16)
    ap.add_argument("--model", default=str(M / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--out", default=None, help="JSON of every record")
    a = ap.parse_args()
    torch.set_num_threads(2)
    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.data.registry import is_name
    from lrt.evaluate.steering import random_directions
    from lrt.models.load import load_model
    from lrt.pipelines.layer_search import probe_layer
    from lrt.pipelines.study_items import parse_behaviour
    from lrt.stats.balance import balanced_pick

    name = a.behaviour if is_name(a.behaviour) else f"caa:{a.behaviour}"
    lm = load_model(a.model, "float32")
    tok = lm.tokenizer
    b = parse_behaviour(name)               # as lrt study reads it: a set whose test part is itself has none
    gen = contrast_items(tok, load_contrasts(b.contrast, role="contrast"), chat=True)
    test_sources = ({it.source for it in contrast_items(tok, load_contrasts(b.test, role="test"), chat=True)}
                    if b.test else set())
    pair_counts = [int(x) for x in a.pairs.split(",")]
    top = max(pair_counts)
    val = balanced_pick([it for it in gen[top:] if it.source not in test_sources], a.validation)
    assert not {it.source for it in val} & test_sources
    rand = random_directions(a.search_random, lm.d_model, a.seed)
    print(f"{name}: {len(gen)} generate items, validation {len(val)} (after the first {top}), "
          f"{len(test_sources)} test prompts excluded")
    rows = []
    for n in pair_counts:
        for layer in [int(x) for x in a.layers.split(",")]:
            for pos in a.positions.split(","):
                t0 = time.time()
                rec, v = probe_layer(lm, layer, gen[:n], val, rand, pos, a.batch_size)
                row = {"pairs": n, "layer": layer, "positions": pos, "alpha": rec["alpha"],
                       "effect": rec["effect"], "z": rec["z"], "p": rec["p_value"],
                       "clear": rec["search"]["clear_of_random"],
                       "split_half_cos": v.meta.get("split_half_cos"), "seconds": round(time.time() - t0)}
                rows.append({**row, "search": rec["search"]})
                print(f"pairs {n:4d}  L{layer:<3d} {pos:7s} α ±{row['alpha']:<7g} effect {row['effect']:+.3f}  "
                      f"z {row['z']:+.2f}  p {row['p']:.3g}  clear {row['clear']}  "
                      f"split-half {row['split_half_cos'] and round(row['split_half_cos'], 2)}  {row['seconds']} s",
                      flush=True)
    if a.out:
        Path(a.out).parent.mkdir(parents=True, exist_ok=True)
        Path(a.out).write_text(json.dumps({"behaviour": name, "validation": len(val), "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
