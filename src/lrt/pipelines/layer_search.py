"""Where does the large model's own vector steer? A layer search on validation items, before anything is judged.

A behaviour whose native vector does not move the model beyond random directions says nothing about transfer. For
each candidate target layer, in order (the first pair — the given layers or ``--first-depth`` — then other relative
depths), the native CAA vector is computed from the behaviour's vector pairs and the α search
(:mod:`lrt.evaluate.alpha_search`) probes it on the *validation* items against the search's own random directions.
At the chosen α the native effect ``p(α) − p(−α)`` is compared with the random effects: ``z = effect / σ̂`` (σ̂² the
mean squared random effect) and its t p-value (:mod:`lrt.evaluate.significance`). The first layer where the native
vector steers *forward* (p < 0.05) is taken; when none does, the layer with the largest forward z, flagged — or,
with ``--fallback cached``, the largest z among the pairs whose map and pool are already cached (a new layer pair
costs a text map and a contrast pool: ~1 h for the Qwen pair on 2 CPU cores). The source layer is the one at the
same relative depth. Only validation items are used: the test items stay unseen.
"""

from __future__ import annotations

import math

import torch

from ..evaluate.alpha_search import search_alpha
from ..evaluate.answer import grid_for
from ..evaluate.significance import ALPHA_LEVEL, t_two_sided
from ..models.load import LoadedModel
from ..steering.vectors import contrast_vector


def source_layer_for(target_layer: int, n_source: int, n_target: int) -> int:
    """The source block at the target block's relative depth (the inverse of the default-pair rule)."""
    return max(0, min(n_source - 1, round((target_layer + 1) / n_target * n_source) - 1))


def pair_at_depth(depth: float, n_source: int, n_target: int) -> tuple[int, int]:
    """The target block at relative depth ``depth`` (0–1) and the source block at the same depth."""
    lt = max(0, min(n_target - 1, round(depth * n_target) - 1))
    return source_layer_for(lt, n_source, n_target), lt


def candidates(first: tuple[int, int], n_source: int, n_target: int, depths: list[float]) -> list[tuple[int, int]]:
    """The first pair, then the target block at each relative depth (with its source block), without repeats."""
    out = [tuple(first)]
    for d in depths:
        pair = pair_at_depth(d, n_source, n_target)
        if all(pair[1] != q[1] for q in out):
            out.append(pair)
    return out


def effect_z(record: dict) -> dict:
    """The native effect at the chosen α against the search's random effects: z and its t p-value."""
    row = next(r for r in record["probe"] if r["alpha"] == record["chosen"])
    rand = row["random_effects"]
    sigma = math.sqrt(sum(x * x for x in rand) / len(rand)) if rand else float("nan")
    z = row["native_effect"] / sigma if sigma > 0 else float("nan")
    return {"alpha": record["chosen"], "effect": row["native_effect"], "z": z,
            "p_value": t_two_sided(z, len(rand)) if rand and math.isfinite(z) else None, "n_random": len(rand)}


def probe_layer(lm: LoadedModel, layer: int, vector_items, validation, search_random: torch.Tensor, positions: str,
                batch_size: int, progress: bool = False, vector=None) -> tuple[dict, object]:
    """The native vector at ``layer`` (``vector``: already computed from ``vector_items``) and its α search on
    ``validation``: (record, vector)."""
    v = vector if vector is not None else contrast_vector(lm, vector_items, layer)
    grid = grid_for(positions)
    _, rec = search_alpha(lm, layer, validation, v.unit(), search_random, v.median_norm, grid, batch_size,
                          len(validation), progress=progress, desc=f"α search, layer {layer}")
    z = effect_z(rec)
    z["steers_forward"] = z["p_value"] is not None and z["p_value"] < ALPHA_LEVEL and z["effect"] > 0
    return {"layer": layer, **z, "search": rec}, v


def search_layers(lm: LoadedModel, pairs: list[tuple[int, int]], vector_items, validation,
                  search_random: torch.Tensor, positions: str, batch_size: int, search: bool = True,
                  log=print, progress: bool = False, prepare=None, cached=None
                  ) -> tuple[int, dict, object, list[dict]]:
    """Try ``pairs`` in order; returns (index of the chosen pair, its record, its native vector, every record).
    ``prepare(i, pair)``, where given, runs before candidate ``i`` is probed and returns the (vector items,
    validation items, native vector or None) to probe it with — the study grows the vector pairs at each
    candidate's layers there (and computes the native vector on the way); each record notes its ``vector_pairs``
    and the native vector's ``split_half_cos``. ``cached(pair)``, where given: whether that pair's map is cached —
    when no candidate steers, the fallback is the largest z among the cached pairs (where there are any); the
    chosen record's ``fallback`` says which rule picked it."""
    records, vectors = [], []
    for i, (ls, lt) in enumerate(pairs if search else pairs[:1]):
        given = None
        if prepare is not None:
            vector_items, validation, given = prepare(i, (ls, lt))
        rec, v = probe_layer(lm, lt, vector_items, validation, search_random, positions, batch_size, progress,
                             vector=given)
        rec["source_layer"] = ls
        rec["vector_pairs"] = len(vector_items)
        half = v.meta.get("split_half_cos")
        rec["split_half_cos"] = half and round(half, 3)
        records.append(rec)
        vectors.append(v)
        log(f"  layer {lt}: native effect {rec['effect']:.3g} at ±{rec['alpha']:g}, z {rec['z']:.2f}, "
            f"p {rec['p_value'] if rec['p_value'] is None else round(rec['p_value'], 4)}"
            + (f", native split-half cos {rec['split_half_cos']}" if rec["split_half_cos"] is not None else "")
            + (" — steers forward" if rec["steers_forward"] else ""))
        if rec["steers_forward"]:
            return i, rec, v, records
    return (*fallback_choice(records, pairs, vectors, cached), records)


def fallback_choice(records: list[dict], pairs, vectors, cached=None) -> tuple[int, dict, object]:
    """No candidate steered: the one with the largest z — among those ``cached(pair)`` says are cached, where any
    are. Its record's ``fallback`` names the rule (and the largest z overall where that lies elsewhere)."""
    def z(k):
        return records[k]["z"] if math.isfinite(records[k]["z"]) else -1e9

    every = range(len(records))
    best = max(every, key=z)
    pool = [k for k in every if cached is not None and cached(tuple(pairs[k]))]
    pick = max(pool, key=z) if pool else best
    rec = records[pick]
    rec["fallback"] = "largest z" if pick == best else (
        f"largest z among cached layer pairs (largest overall: L{pairs[best][0]} → L{pairs[best][1]}, "
        f"z {records[best]['z']:.2f})")
    return pick, rec, vectors[pick]
