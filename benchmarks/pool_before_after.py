"""Did a change to the pool's data move the maps? cos(A·v_small, v_native) through the default-pool map fitted on
two versions of one layer pair's pool differences — a copy kept from before the change (``--before``) and the
study cache's current pool — for every vector of a set both versions share unchanged (each judged through maps
fitted without its whole family, as ``map_pool_compare.py`` does).

    cp runs/pool/pool-14-17.safetensors runs/pool/pool-14-17-before.safetensors      # before rebuilding data
    python benchmarks/map_pool_compare.py --cache runs/pool --layers 14,17 ...        # recomputes changed sets
    python benchmarks/pool_before_after.py --cache runs/pool --layers 14,17 \\
        --before runs/pool/pool-14-17-before.safetensors --out runs/pool/before-after-14-17.json

A set counts as unchanged where the current file records its data fingerprint and the before file holds the same
differences (bit for bit); the sets that changed enter each map in their own version only, and their own vectors
are compared too (each version through its own map; both models' split-half cosines — the answer cells from the
current data, so a changed set must keep its records' letter and answer pattern). Loads the small model's
tokenizer (for the answer cells), no forward passes; ~9 min on 2 CPU cores (the model load and 22 map fits).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from map_pool_compare import GROUPS, cos, pool_args, set_cells  # noqa: E402


def main() -> None:
    ap = pool_args(__doc__, "runs/pool-before-after.json")
    ap.add_argument("--before", required=True, help="a copy of the pool file from before the data changed")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    from safetensors.torch import load_file

    from lrt.maps.affine import AffineMap
    from lrt.maps.contrast import fit_from_differences, resolve_sets
    from lrt.models.load import load_model
    from lrt.stats.balance import centre_cells, split_half_cos

    t0 = time.time()
    ls, lt = (int(x) for x in args.layers.split(","))
    cache = Path(args.cache)
    prior = AffineMap.load(cache / f"text-{ls}-{lt}")
    before, now = load_file(args.before), load_file(cache / f"pool-{ls}-{lt}.safetensors")
    sets = sorted({k.rsplit("|", 1)[0] for k in now})
    same = [s for s in sets if all(f"{s}|{p}" in before and torch.equal(before[f"{s}|{p}"], now[f"{s}|{p}"])
                                   for p in "xy")]
    changed = [s for s in sets if s not in same]
    print(f"{len(same)} sets unchanged, {len(changed)} changed: {', '.join(changed)}", flush=True)
    tok = load_model(args.small, "float32").tokenizer
    _, families, _ = resolve_sets(sets)
    versions = {"before": before, "now": now}
    maps = {}

    def maps_without(fam: str) -> dict:
        """Each version's default-pool map fitted without the family ``fam`` (once per family)."""
        if fam not in maps:
            rest = [s for s in sets if families[s] != fam]
            maps[fam] = {v: fit_from_differences(prior, {s: (d[f"{s}|x"], d[f"{s}|y"]) for s in rest},
                                                 {s: families[s] for s in rest}) for v, d in versions.items()}
        return maps[fam]

    def vector(d, s: str, cells) -> tuple[torch.Tensor, torch.Tensor]:
        return tuple(centre_cells(d[f"{s}|{p}"], cells).double().mean(0) for p in "xy")

    rows = []
    for s in same:
        vs, vt = vector(now, s, set_cells(tok, s, len(now[f"{s}|x"]), args.pairs))
        ms = maps_without(families[s])
        r = {"vector": s, **{f"cos_{v}": cos(m.A.double() @ vs, vt) for v, m in ms.items()},
             **{f"lambda_{v}": m.meta["contrast"]["lambda"] for v, m in ms.items()}}
        rows.append(r)
        print(f"{s:40s} before {r['cos_before']:.3f}  now {r['cos_now']:.3f}", flush=True)
    # the changed sets' own vectors, each version through its own map (without the set's family): how stable each
    # model's vector is (split-half cosine) and how well the map carries it
    rebuilt = []
    for s in changed:
        cells = set_cells(tok, s, len(now[f"{s}|x"]), args.pairs)
        r = {"vector": s}
        for v, d in versions.items():
            if f"{s}|x" not in d or len(d[f"{s}|x"]) != len(cells):
                continue
            vs, vt = vector(d, s, cells)
            r |= {f"cos_{v}": cos(maps_without(families[s])[v].A.double() @ vs, vt),
                  f"split_half_small_{v}": split_half_cos(d[f"{s}|x"], cells),
                  f"split_half_native_{v}": split_half_cos(d[f"{s}|y"], cells)}
        rebuilt.append(r)
        print(f"{s:40s} " + "  ".join(f"{v}: cos {r[f'cos_{v}']:.3f}, split half {r[f'split_half_small_{v}']:.2f} / "
                                      f"{r[f'split_half_native_{v}']:.2f}" for v in versions if f"cos_{v}" in r),
              flush=True)
    means = {}
    for g in GROUPS:
        sel = [r for r in rows if r["vector"].startswith(g)]
        if sel:
            means[g.rstrip(":")] = {v: round(sum(r[f"cos_{v}"] for r in sel) / len(sel), 3) for v in versions}
            print(f"mean {g.rstrip(':'):12s} ({len(sel)}) before {means[g.rstrip(':')]['before']:.3f}  "
                  f"now {means[g.rstrip(':')]['now']:.3f}")
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps({"layers": [ls, lt], "pairs": args.pairs, "changed": changed, "rows": rows,
                                          "changed_rows": rebuilt,
                                          "means": means, "seconds": round(time.time() - t0)}, indent=1))


if __name__ == "__main__":
    main()
