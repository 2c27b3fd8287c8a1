"""Layer sweep: one harvest for every (source layer, target layer) pair vs one harvest per pair, same maps.

For each model pair, every layer of both models (embed + blocks): ``lrt.maps.sweep.sweep_layers`` (one pass,
concatenated moments, each pair a slice) against ``lrt.maps.fit.fit_map`` called once per pair (its own harvest
with early stop; the massive-norm cut off, as in the sweep, so the maps are the same). Prints the wall time of
both, the ratio, and the largest difference of held-out R² between the two (should be ~0).

    python benchmarks/bench_sweep.py --pairs zoo-xs:zoo-m,zoo-s:zoo-m --tokens 20000
"""

from __future__ import annotations

import argparse
import time

import torch


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--pairs", default="zoo-xs:zoo-m,zoo-s:zoo-m")
    ap.add_argument("--tokens", type=int, default=20000)
    ap.add_argument("--threads", type=int, default=1)
    args = ap.parse_args()
    torch.set_num_threads(args.threads)

    from lrt.harvest.config import HarvestConfig
    from lrt.maps.config import FitConfig
    from lrt.maps.fit import fit_map
    from lrt.maps.sweep import sweep_layers
    from lrt.models.layers import layer_name
    from lrt.models.load import load_model

    h = HarvestConfig(tokens=args.tokens, context=128, batch_size=8, progress=False)
    print(f"{'pair':14s} {'pairs':>5s} {'one pass (s)':>12s} {'per pair (s)':>12s} {'ratio':>6s} {'max |ΔR²|':>10s}")
    for spec in args.pairs.split(","):
        a, b = spec.split(":")
        s, t = load_model(a), load_model(b)
        S, T = list(range(-1, s.n_layers)), list(range(-1, t.n_layers))
        t0 = time.perf_counter()
        sw = sweep_layers(s, t, S, T, h)
        one = time.perf_counter() - t0
        r2 = {(r["source_index"], r["target_index"]): r["heldout_r2"] for r in sw.pairs}
        t0 = time.perf_counter()
        diff = 0.0
        for x in S:
            for y in T:
                m = fit_map(s, t, layer_name(x), layer_name(y), h, FitConfig(max_norm_ratio=0))
                diff = max(diff, abs(m.meta["metrics"]["heldout"]["r2"] - r2[(x, y)]))
        per = time.perf_counter() - t0
        print(f"{a + '→' + b[4:]:14s} {len(S) * len(T):5d} {one:12.1f} {per:12.1f} {per / one:6.2f} {diff:10.2e}",
              flush=True)


if __name__ == "__main__":
    main()
