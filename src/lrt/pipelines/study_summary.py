"""The study's verdict lines and summary over behaviours: a behaviour's status (native steers, then the
transfer's verdict), the counts, the median transferred / native ratio, and how well each cheap signal — computed
before the test evaluation — ranked the behaviours by the measured z (Spearman)."""

from __future__ import annotations

import math

from .study_cache import spearman

SIGNALS = ("predicted_z", "expected_cos", "basis_share", "split_half_cos", "native_split_half_cos",
           "native_validation_z", "small_z", "answer_z", "cos_to_native")


def study_status(v: dict) -> str:
    """A behaviour's line: "not steerable here" when its native vector does not steer, else the transfer's."""
    return v["transfer"]["transferred_direction"]["status"] if v["native"]["steers"] else "not steerable here"


def summarize(records: dict[str, dict]) -> dict:
    """Counts of the verdicts, the median transferred / native ratio where native steers, and how well each cheap
    signal ranked the behaviours by the transferred vector's measured z (Spearman)."""
    steer = {n: r for n, r in records.items() if r["status"] != "not steerable here"}
    fwd = [n for n, r in steer.items() if r["verdict"]["vectors"]["native"]["slope"] > 0]
    repro = [n for n, r in steer.items() if r["verdict"]["transfer"]["transferred_direction"]["reproduces"]]
    ratios = sorted(r["verdict"]["transfer"]["transferred_direction"]["ratio"] for r in steer.values())
    measured = {n: r["verdict"]["vectors"]["transferred_direction"]["z"] for n, r in records.items()}
    rank = {}
    for s in SIGNALS:
        xs = [(records[n]["signals"].get(s), measured[n]) for n in records]
        xs = [(a, b) for a, b in xs if a is not None and b is not None and math.isfinite(a) and math.isfinite(b)]
        rank[s] = {"spearman": spearman([a for a, _ in xs], [b for _, b in xs]), "n": len(xs)}
    return {"behaviours": len(records), "native_steers": len(steer), "native_forward": len(fwd),
            "transferred_reproduces": len(repro), "reproduced": repro,
            "median_ratio": ratios[len(ratios) // 2] if len(ratios) % 2 else
            (sum(ratios[len(ratios) // 2 - 1:len(ratios) // 2 + 1]) / 2 if ratios else None),
            "not_steerable": sorted(set(records) - set(steer)), "prediction_spearman": rank,
            "measured": "z of the transferred vector's test slope against the random slopes"}
