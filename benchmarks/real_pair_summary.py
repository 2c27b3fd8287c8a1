"""Summarise real_pair.py runs: the per-behaviour table and how well two predictors anticipate the transferred slope.

    python benchmarks/real_pair_summary.py runs/real-pair/rows.json runs/real-pair-2/rows.json

Predictors, over every transferred vector: the small model's own slope at its layer, and the projection
cos(A·v, native) × native slope; Pearson r with the measured transferred slope (docs/real-pair.md).
"""

from __future__ import annotations

import json
import math
import sys


def pearson(a: list[float], b: list[float]) -> float:
    ma, mb = sum(a) / len(a), sum(b) / len(b)
    num = sum((x - ma) * (y - mb) for x, y in zip(a, b))
    return num / math.sqrt(sum((x - ma) ** 2 for x in a) * sum((y - mb) ** 2 for y in b))


def main() -> None:
    rows = [r for path in sys.argv[1:] for r in json.load(open(path))["rows"] if "rescaled" not in r["vector"]]
    native = {r["behaviour"]: r["slope"] for r in rows if r["vector"] == "native"}
    moved = [r for r in rows if r["vector"] != "native"]
    for r in rows:
        print(f"{r['behaviour']:24s} {r['vector']:20s} slope {r['slope']:7.3f} beats {str(r['beats_all_random']):5s} "
              f"cos {r['cos_native']:.2f} small own {r['small_own_slope']:.3f}")
    measured = [r["slope"] for r in moved]
    projection = [r["cos_native"] * native[r["behaviour"]] for r in moved]
    own = [r["small_own_slope"] for r in moved]
    print(f"\n{len(moved)} transferred vectors: r(small model's own slope, measured) {pearson(own, measured):.2f}; "
          f"r(cos × native slope, measured) {pearson(projection, measured):.2f}; mean projection "
          f"{sum(projection) / len(projection):.2f} vs mean measured {sum(measured) / len(measured):.2f}")


if __name__ == "__main__":
    main()
