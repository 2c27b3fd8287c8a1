"""Which map carries a steering vector best, for vectors in formats nobody tuned for? cos(A·v_small, v_native) for
four maps, each judged on vectors of a behaviour it never saw (its whole family — all four answer formats — left
out of the fit):

- ``text``: the closed-form map on natural text (the study's text map);
- ``recipe``: the first recipe, the text map refitted on the *other six* CAA behaviours' A/B sets only;
- ``default``: the text map refitted on the pool shipped with lrt (`--contrast-sets default`, what `lrt study`
  fits), per-pair differences as they come;
- ``centred``: the same pool with each set's answer cells (letter × matching option text) centred on the balanced
  mean (`lrt.stats.balance.centre_cells`): persona pairs' differences are mostly "say Yes" and the letter, which a
  balanced vector no longer has — does taking them out of the fit help? (It does not: see docs/real-pair.md.)

Vectors: each pool set's balanced CAA mean difference (``--pairs`` pairs, as `lrt steer` computes it: answer cells
weighed alike) on both models — the seven behaviours in four answer formats (A/B letters, Yes/No, persona-style,
free text), MMLU / TruthfulQA right vs wrong, and the sentiment text contrast. Also what might predict the
measured cosine: the default map's outlook (`lrt.maps.contrast.transfer_outlook`, expected cosine) and the small
model's vector's split-half cosine (`lrt.stats.balance.split_half_cos`, in every CAA vector's metadata).

    python benchmarks/map_pool_compare.py --cache runs/pool --layers 14,17 --out runs/map-pool-compare-14-17.json

``--cache`` is a study's cache folder (``STUDY/cache``): the layer pair's text map (``text-LS-LT``) and pool
differences (``pool-LS-LT.safetensors``) are read from there, and computed and saved there first where missing
(the pair's models, 25–70 min for the pool on 2 CPU cores); the answer cells from the small model's tokenizer. No
steering runs.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch

BEHAVIOURS = ("coordinate-other-ais", "corrigible-neutral-HHH", "hallucination", "myopic-reward", "refusal",
              "survival-instinct", "sycophancy")
GROUPS = ("caa:", "caa-yesno:", "caa-persona:", "caa-text:", "mmlu", "truthfulqa", "concept:")
MAPS = ("text", "recipe", "default", "centred")
MODELS = Path.home() / ".cache" / "lrt-models"


def cos(a: torch.Tensor, b: torch.Tensor) -> float:
    return float(torch.nn.functional.cosine_similarity(a.double(), b.double(), dim=0))


def text_map(tdir: Path, src, tgt, ls: int, lt: int, tokens: int | None = None):
    """The layer pair's text map as a study fits it (``STUDY_HARVEST``; ``tokens`` to change its budget): read from
    ``tdir`` (refused when fitted on other models, text or settings) or fitted and saved there."""
    from lrt.harvest.config import HarvestConfig
    from lrt.maps.affine import AffineMap
    from lrt.maps.config import FitConfig
    from lrt.maps.fit import fit_map
    from lrt.pipelines.config import STUDY_HARVEST
    from lrt.pipelines.study_cache import is_text_map_for, stamp_text_map

    harvest = HarvestConfig(**{**STUDY_HARVEST, **({"tokens": tokens} if tokens else {})}, progress=False)
    fit = FitConfig()
    if (tdir / "map.json").is_file():
        m = AffineMap.load(tdir)
        if not is_text_map_for(m, src, tgt, harvest, fit, "float32"):
            raise SystemExit(f"{tdir} was fitted on other models, text or settings: give another --cache")
        return m
    m = stamp_text_map(fit_map(src, tgt, ls, lt, harvest, fit), fit, "float32")
    m.save(tdir)
    return m


def cached_pool(cache: Path, ls: int, lt: int, src, tgt, pairs: int):
    """(text map, {set: (dx, dy, answer cells)}) of the layer pair for the loaded models ``src``, ``tgt``; the map
    and differences computed and saved where the cache lacks them, recorded as a study records them; a cache made
    with other settings is refused."""
    from lrt.maps.contrast import DEFAULT_POOL, set_differences, set_fingerprint
    from lrt.pipelines.study_cache import pool_record, read_pool, write_pool

    f = cache / f"pool-{ls}-{lt}.safetensors"
    made = pool_record(src, tgt, "float32", pairs, True, "none")       # what a study with these settings writes
    fps = {s: set_fingerprint(s, pairs) for s in DEFAULT_POOL}        # a set whose data changed is computed again
    have, record = read_pool(f, made, fps)
    if record is not None and record != made:              # never overwrite another study's cache
        raise SystemExit(f"{f} was made with {record}, not {made}: give another --cache (or --pairs)")
    todo = [s for s in DEFAULT_POOL if f"{s}|x" not in have]
    prior = text_map(cache / f"text-{ls}-{lt}", src, tgt, ls, lt)
    t0 = time.time()
    for s in todo:
        dx, dy = set_differences(src, tgt, ls, lt, s, pairs, chat=True)
        have.update({f"{s}|x": dx.float().contiguous(), f"{s}|y": dy.float().contiguous()})
        write_pool(f, have, made, fps)
        print(f"pool {s}: {len(dx)} pairs ({time.time() - t0:.0f} s)", flush=True)
    return prior, {s: (have[f"{s}|x"], have[f"{s}|y"], set_cells(src.tokenizer, s, len(have[f"{s}|x"]), pairs))
                   for s in DEFAULT_POOL}


def set_cells(tokenizer, s: str, n: int, pairs: int) -> torch.Tensor:
    """A pool set's answer cells (letter × matching option text; ``lrt.stats.balance.Balance``) for its ``n``
    differences: one cell for a ``concept:`` set."""
    from lrt.data.contrasts import contrast_items, load_contrasts
    from lrt.stats.balance import Balance

    if s.startswith("concept:"):
        return torch.zeros(n, dtype=torch.long)
    return Balance(contrast_items(tokenizer, load_contrasts(s, pairs), chat=True)).cells


def pool_args(doc: str, out: str, layers: str | None = "14,17",
              cache_help: str = "a study's cache folder (STUDY/cache)") -> argparse.ArgumentParser:
    """The options the benchmarks reading a study's pool share: the pair, the cache, the layers (``None``: the
    caller names its own), pairs, threads."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--small", default=str(MODELS / "qwen2.5-coder-0.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--large", default=str(MODELS / "qwen2.5-coder-1.5b-instruct-q4_k_m.gguf"))
    ap.add_argument("--cache", required=True, help=cache_help)
    if layers is not None:
        ap.add_argument("--layers", default=layers, help="source,target layer")
    ap.add_argument("--pairs", type=int, default=60)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=out)
    return ap


def main() -> None:
    args = pool_args(__doc__, "runs/map-pool-compare.json",
                     cache_help="a study's cache folder (STUDY/cache), filled where it lacks the layer pair"
                     ).parse_args()
    torch.set_num_threads(args.threads)

    from lrt.maps.contrast import fit_from_differences, resolve_sets, transfer_outlook
    from lrt.pipelines.study_cache import spearman
    from lrt.stats.balance import centre_cells, split_half_cos

    ls, lt = (int(x) for x in args.layers.split(","))
    t0 = time.time()
    from lrt.models.load import load_model

    prior, raw = cached_pool(Path(args.cache), ls, lt, load_model(args.small, "float32"),
                             load_model(args.large, "float32"), args.pairs)
    centred = {k: (centre_cells(dx, c), centre_cells(dy, c)) for k, (dx, dy, c) in raw.items()}
    plain = {k: (dx, dy) for k, (dx, dy, _) in raw.items()}
    _, families, _ = resolve_sets(list(raw))
    vectors = {k: (dx.double().mean(0), dy.double().mean(0)) for k, (dx, dy) in centred.items()}   # balanced means
    rows = []
    for fam in sorted(set(families.values())):
        names = [k for k in raw if families[k] == fam]
        rest = [k for k in raw if families[k] != fam]
        recipe_sets = {f"caa:{b}": centred[f"caa:{b}"] for b in BEHAVIOURS if f"caa:{b}" in rest}
        maps = {"text": prior,
                "recipe": fit_from_differences(prior, recipe_sets, {k: k for k in recipe_sets}),
                "default": fit_from_differences(prior, {k: plain[k] for k in rest}, {k: families[k] for k in rest}),
                "centred": fit_from_differences(prior, {k: centred[k] for k in rest}, {k: families[k] for k in rest})}
        for name in names:
            vs, vt = vectors[name]
            o = transfer_outlook(maps["default"], vs.float())
            r = {"vector": name, "family": fam, **{f"cos_{m}": cos(maps[m].A.double() @ vs, vt) for m in MAPS},
                 "expected_cos_default": o["expected_cos"], "nearest_set": o["nearest_set"],
                 "split_half_cos": split_half_cos(raw[name][0], raw[name][2]),
                 "basis_share": o["basis_share"], **{f"lambda_{m}": maps[m].meta["contrast"]["lambda"]
                                                     for m in MAPS[1:]}}
            rows.append(r)
            print(f"{name:40s} " + "  ".join(f"{m} {r['cos_' + m]:.3f}" for m in MAPS) +
                  f"  (expected {r['expected_cos_default'] or float('nan'):.3f}, split half {r['split_half_cos']:.2f})",
                  flush=True)
    means = {}
    for g in GROUPS:
        sel = [r for r in rows if r["vector"].startswith(g)]
        means[g.rstrip(":")] = {m: round(sum(r[f"cos_{m}"] for r in sel) / len(sel), 3) for m in MAPS}
        print(f"mean {g.rstrip(':'):12s} ({len(sel)}) " + "  ".join(f"{m} {v:.3f}" for m, v in
                                                                 means[g.rstrip(':')].items()))
    rho = {}
    for signal in ("expected_cos_default", "split_half_cos"):
        ok = [r for r in rows if r[signal] is not None]
        rho[signal] = spearman([r[signal] for r in ok], [r["cos_default"] for r in ok])
        print(f"Spearman({signal}, measured cos with the default map) over {len(ok)} vectors: {rho[signal]:.2f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"layers": [ls, lt], "pairs": args.pairs, "rows": rows, "means": means,
                                          "spearman_vs_measured_cos_default": rho,
                                          "seconds": round(time.time() - t0)}, indent=1))


if __name__ == "__main__":
    main()
