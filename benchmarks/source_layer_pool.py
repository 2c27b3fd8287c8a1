"""Which *source* layer should feed a given target layer? For one target block of the large model, the contrast-pool
map from each of several source blocks of the small model, judged as ``map_pool_compare.py`` judges one pair:
cos(A·v_small, v_native) of each pool set's balanced mean, through the map fitted *without its whole family*.

`lrt study` takes the source block at the target's relative depth (L11 for the 1.5B's L13). On the Qwen pair the
default map carries persona vectors at 0.78 from L14 to L17 but at 0.53 from L11 to L13 — the layer where the
persona vectors that steer at all do steer (docs/real-pair.md). Is that the target layer, or the source block
paired with it?

The pool's differences are computed once on the large model at the target layer (the shared-prefix path, as the
study) and once on the small model at every source layer (each ``prompt + answer`` a full pass, all layers
captured together), saved per set to ``--cache`` (resumable). The maps are shrunk toward zero, not a text map (on
the Qwen pair the prior changed the mean cosine by 0.009: ``benchmarks/prior_tokens.py``), so no text map is
fitted per layer pair; read the cosines side by side, not against a study's. Also printed: each model's vector's
split-half cosine per set (``lrt.stats.balance.split_half_cos``) at every layer, and with ``--compare-pool`` those
of another layer pair's pool on the same first pairs — a native vector that its own pairs do not agree on caps
cos(A·v, native) whatever the map. No steering runs.

    python benchmarks/source_layer_pool.py --cache runs/srcpool --target-layer 13 --pairs 30 \\
        --compare-pool runs/pool/pool-14-17.safetensors --out runs/srcpool/source-layers-13.json
"""

from __future__ import annotations

import json
import math
import time
from pathlib import Path

import torch

from map_pool_compare import GROUPS, cos, pool_args


def reliability(split_half: float) -> float:
    """Spearman–Brown: the reliability of a mean over all pairs from its two halves' cosine (a negative one as 0)."""
    r = max(split_half, 0.0)
    return 2 * r / (1 + r)


def main() -> None:
    ap = pool_args(__doc__, "runs/source-layers.json", layers=None,
                   cache_help="folder for the per-set differences (resumable)")
    ap.add_argument("--target-layer", type=int, default=13)
    ap.add_argument("--source-layers", default="9,11,12,13,14,15")
    ap.add_argument("--compare-pool", default=None,
                    help="a study's pool file (STUDY/cache/pool-LS-LT.safetensors, the same models and chat "
                         "template, at least --pairs pairs a set): its target and source vectors' split-half cosines "
                         "on the same first pairs are printed beside this run's")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from safetensors.torch import load_file

    from lrt.data.concepts import concept_texts
    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.harvest.capture import capture_batches
    from lrt.maps.affine import AffineMap
    from lrt.maps.contrast import (DEFAULT_POOL, answer_differences, fit_from_differences, mean_pooled, resolve_sets,
                                   set_fingerprint)
    from lrt.models.load import load_model
    from lrt.pipelines.study_cache import model_id, read_pool, spearman, write_pool
    from lrt.stats.balance import Balance, centre_cells, split_half_cos

    lt, layers = args.target_layer, [int(x) for x in args.source_layers.split(",")]
    t0 = time.time()
    src, tgt = load_model(args.small, "float32"), load_model(args.large, "float32")
    made = {"small": src.fingerprint, "large": tgt.fingerprint, "target_layer": str(lt),
            "source_layers": ",".join(map(str, layers)), "pairs": str(args.pairs), "chat": "True"}
    f = Path(args.cache) / f"pool-src-{args.source_layers.replace(',', '_')}-to-{lt}.safetensors"
    fps = {s: set_fingerprint(s, args.pairs) for s in DEFAULT_POOL}   # a set whose data changed is computed again
    have, record = read_pool(f, made, fps)
    if record is not None and record != made:               # never overwrite another run's differences
        raise SystemExit(f"{f} was made with {record}, not {made}: give another --cache")

    def source_diffs(items) -> dict[int, torch.Tensor]:
        """Every source layer's h(positive answer) − h(negative answer), full passes, all layers at once."""
        seqs = [it.ids + it.positive[:1] for it in items] + [it.ids + it.negative[:1] for it in items]
        order = sorted(range(len(seqs)), key=lambda i: len(seqs[i]))
        out = {L: torch.empty(len(seqs), src.d_model) for L in layers}
        row = 0
        for hs, mask in capture_batches(src, [seqs[i] for i in order], layers, 16):
            last = mask.sum(1) - 1
            for L in layers:
                out[L][order[row:row + len(last)]] = hs[L][torch.arange(len(last)), last]
            row += len(last)
        n = len(items)
        return {L: out[L][:n] - out[L][n:] for L in layers}

    cells = {}
    for s in DEFAULT_POOL:
        if s.startswith("concept:"):
            tc = concept_texts(s.split(":", 1)[1], "lrt:reviews", split="train", limit=args.pairs)
            n = min(len(tc.positive), len(tc.negative))
            cells[s] = torch.zeros(n, dtype=torch.long)
            if f"{s}|y" in have:
                continue
            got = {f"{s}|y": mean_pooled(tgt, lt, tc.positive[:n]) - mean_pooled(tgt, lt, tc.negative[:n])}
            for L in layers:
                got[f"{s}|x{L}"] = mean_pooled(src, L, tc.positive[:n]) - mean_pooled(src, L, tc.negative[:n])
        else:
            items = contrast_items(src.tokenizer, load_contrasts(s, args.pairs), chat=True)
            cells[s] = Balance(items).cells
            if f"{s}|y" in have:
                continue
            got = {f"{s}|y": answer_differences(tgt, lt, items)}
            got.update({f"{s}|x{L}": d for L, d in source_diffs(items).items()})
        have.update({k: v.float().contiguous() for k, v in got.items()})
        write_pool(f, have, made, fps)
        print(f"{s}: {len(got[f'{s}|y'])} pairs ({time.time() - t0:.0f} s)", flush=True)

    # how stable each model's vector is (split-half cosine, per set; lrt.stats.balance): a noisy native vector caps
    # cos(A·v, native) whatever the map
    stab = {s: {"target": split_half_cos(have[f"{s}|y"], cells[s]),
                **{f"source_{L}": split_half_cos(have[f"{s}|x{L}"], cells[s]) for L in layers}} for s in DEFAULT_POOL}
    if args.compare_pool:
        _, theirs = read_pool(Path(args.compare_pool), {})  # its record (models, template, pairs)
        theirs = theirs or {}
        want = {"source": model_id(src), "target": model_id(tgt), "chat": "True"}
        wrong = {k: theirs.get(k) for k, v in want.items() if theirs.get(k) != v}
        if wrong or int(theirs.get("contrast_pairs", 0)) < args.pairs:
            raise SystemExit(f"--compare-pool {args.compare_pool} was made with {theirs}, not these models "
                             f"({want}) and at least {args.pairs} pairs a set: give that study's pool")
        other = load_file(args.compare_pool)
        for s in DEFAULT_POOL:
            n = len(have[f"{s}|y"])
            stab[s]["compare_target"] = split_half_cos(other[f"{s}|y"][:n], cells[s][:n])
            stab[s]["compare_source"] = split_half_cos(other[f"{s}|x"][:n], cells[s][:n])
    stab_means = {g.rstrip(":"): {k: round(sum(stab[s][k] for s in stab if s.startswith(g))
                                           / sum(s.startswith(g) for s in stab), 3) for k in next(iter(stab.values()))}
                  for g in GROUPS}
    for g, m in stab_means.items():
        print(f"split-half cos {g:12s} " + "  ".join(f"{k} {v:.3f}" for k, v in m.items()), flush=True)
    _, families, _ = resolve_sets(list(DEFAULT_POOL))
    zero = AffineMap(A=torch.zeros(tgt.d_model, src.d_model), p=torch.zeros(tgt.d_model), source=src.name,
                     target=tgt.name, source_layer="", target_layer=lt, meta={"method": "zero"})
    rows, means = [], {}
    for L in layers:
        sets = {s: (have[f"{s}|x{L}"], have[f"{s}|y"]) for s in DEFAULT_POOL}
        for fam in sorted(set(families.values())):
            rest = {k: v for k, v in sets.items() if families[k] != fam}
            m = fit_from_differences(zero, rest, {k: families[k] for k in rest})
            for s in (k for k in sets if families[k] == fam):
                dx, dy = sets[s]                            # balanced means, as map_pool_compare takes them
                vs, vt = (centre_cells(d, cells[s]).double().mean(0) for d in (dx, dy))
                rows.append({"source_layer": L, "vector": s, "cos": cos(m.A.double() @ vs.double(), vt.double()),
                             "lambda": m.meta["contrast"]["lambda"], "split_half_target": stab[s]["target"],
                             "split_half_source": stab[s][f"source_{L}"]})
        sel = [r for r in rows if r["source_layer"] == L]
        means[L] = {g.rstrip(":"): round(sum(r["cos"] for r in sel if r["vector"].startswith(g))
                                         / max(1, sum(r["vector"].startswith(g) for r in sel)), 3) for g in GROUPS}
        means[L]["all"] = round(sum(r["cos"] for r in sel) / len(sel), 3)
        print(f"L{L} → L{lt}: " + "  ".join(f"{g} {v:.3f}" for g, v in means[L].items()), flush=True)
        rel = [math.sqrt(reliability(r["split_half_source"]) * reliability(r["split_half_target"])) for r in sel]
        means[L]["spearman_stability_vs_cos"] = spearman(rel, [r["cos"] for r in sel])
        print(f"  Spearman(√(reliability small × native), cos) over {len(sel)} sets: "
              f"{means[L]['spearman_stability_vs_cos']:.2f}", flush=True)
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"target_layer": lt, "source_layers": layers, "pairs": args.pairs,
                                          "means": means, "split_half_means": stab_means,
                                          "split_half": stab, "compare_pool": args.compare_pool, "rows": rows,
                                          "seconds": round(time.time() - t0)},
                                         indent=1))


if __name__ == "__main__":
    main()
