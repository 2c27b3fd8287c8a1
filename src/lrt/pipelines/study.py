"""``lrt study``: does a small model's steering vector, carried through the map, steer the large model like its own?

For each behaviour, in one command and resumable behaviour by behaviour:

1. **Data** (:mod:`.study_items`) — the vector pairs (the generate set's first ``pairs``, doubled up to
   ``max_pairs`` while the small model's vector is unstable: :func:`grow_pairs`), *validation* items (the generate
   set's next unused pairs, in turn from each answer cell — matching letter, and on persona items Yes / No:
   :func:`lrt.stats.balance.balanced_pick`) and *test* items (the behaviour's test set), disjoint by prompt
   fingerprint.
2. **Layer** — :mod:`.layer_search`: the target layer where the large model's own vector steers forward on the
   validation items (and the α range, chosen there), the source layer at the same depth. Before each candidate is
   probed the pairs are grown at its source layer (:func:`grow_pairs`); where it needs more than the pairs so far,
   it is probed with them on validation items no earlier candidate used (and no test item was probed on).
3. **Map** — the text map of that layer pair (fitted once, cached) refitted on the contrast pool's differences
   (computed once per layer pair, cached) *without this behaviour's family* (:mod:`lrt.maps.contrast`).
4. **Vectors** — CAA on both models; transferred = A·v.
5. **Prediction** — before the test evaluation: the map's outlook for v (:func:`lrt.maps.contrast.transfer_outlook`),
   the native vector's validation z, the small model's own z, an answer-position probe of A·v on the large model.
6. **Verdict** — the test items, native vs transferred vs the random distribution (:mod:`lrt.evaluate.verdict`).

Results: ``OUT/behaviours/<name>/result.json`` (and the vectors) per behaviour, ``OUT/results.json`` (kind
``lrt_study``) and ``OUT/report.html`` for all of them; ``OUT/cache/`` holds the text maps and pool differences.
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import asdict, replace
from pathlib import Path

import torch

from ..data.contrasts import load_contrasts
from ..data.registry import family_of, lookup
from ..errors import ConfigError
from ..evaluate.answer import answer_grid, grid_for
from ..evaluate.config import default_alphas
from ..evaluate.significance import t_two_sided
from ..evaluate.steering import evaluate_vectors, random_sets
from ..evaluate.verdict import verdict
from ..io.files import atomic_write_text, to_json
from ..io.results import STUDY_FORMAT_VERSION, STUDY_KIND
from ..maps.contrast import fit_from_differences, transfer_outlook
from ..steering.transfer import transfer_vector
from ..stats.balance import Balance
from ..steering.vectors import contrast_vector
from .config import StudyConfig
from .layer_search import candidates, search_layers
from .study_cache import StudyCache
from .study_items import Behaviour, behaviour_items, generate_items, grow_pairs, parse_behaviour, slug
from .study_summary import study_status, summarize


def _z(prop: torch.Tensor, bal: Balance) -> tuple[float, float, float | None]:
    """(effect, z, p) of row 0 of ``prop [V, 2, N]`` (±α) against rows 1.. (random directions); ``bal``: the mean
    over items."""
    eff = bal.mean(prop[:, 1] - prop[:, 0])
    rand = eff[1:]
    sigma = float(rand.pow(2).mean().sqrt())
    z = float(eff[0]) / sigma if sigma > 0 else float("nan")
    return float(eff[0]), z, (t_two_sided(z, len(rand)) if math.isfinite(z) else None)


def run_behaviour(cache: StudyCache, b: Behaviour, log=print, gen: list | None = None) -> dict:
    """Steps 1–6 of the module docstring for one behaviour; returns its record (vectors saved beside it). ``gen``:
    its generate set already read in the small model's tokens (the start-up check's)."""
    cfg, src, tgt = cache.cfg, cache.src, cache.tgt
    t0 = time.time()
    pairs = candidates(cache.first_pair, src.n_layers, tgt.n_layers, cfg.candidate_depths)
    tok = tgt.tokenizer if cache.one_tokenizer else src.tokenizer  # each model reads the items in its own tokens
    gen = generate_items(b, tok, cfg) if gen is None else gen
    gen_t = gen if cache.one_tokenizer else generate_items(b, tgt.tokenizer, cfg)

    def grow(pair: tuple[int, int]):
        """The pairs the vectors need at this candidate: stable on the small model (and with --grow-native on the
        large one at the target layer)."""
        return grow_pairs(src, gen, b, pair[0], cfg, log, native=(tgt, gen_t, pair[1]) if cfg.grow_native else None)

    g = grow(pairs[0])
    n_pairs, trail = g.pairs, g.trail
    small = behaviour_items(b, tok, cfg, n_pairs, gen)
    items = small if cache.one_tokenizer else behaviour_items(b, tgt.tokenizer, cfg, n_pairs, gen_t)
    rand_t, search_t = random_sets(cfg.eval, tgt.d_model)
    sources = ", ".join(f"{n} from the {k}" for k, n in items["test_sources"].items())
    search = (f"layer search over target layers {[lt for _, lt in pairs]}" if cfg.layer_search
              else f"target layer {pairs[0][1]} (no layer search)")
    log(f"{b.name}: {len(items['vector'])} vector pairs, {len(items['validation'])} validation, "
        f"{len(items['test'])} test items ({sources}); {search}")
    grown = {tuple(pairs[0]): g}   # candidate (source, target) → the pairs its vectors are stable with, and them
    seen: set = set()

    def prepare(i: int, pair: tuple[int, int]):
        """Before candidate ``i``: grow the pairs at its layers; where that needs more than the pairs so far, take
        them, and validation items no earlier candidate was probed on (none of which becomes a test item). Also
        returns the native vector where growing computed it from exactly the pairs the candidate is probed with."""
        nonlocal n_pairs, trail, small, items
        pair = tuple(pair)
        if pair not in grown:
            g2 = grown[pair] = grow(pair)
            if g2.pairs > n_pairs:
                last = g2.trail[-1]
                log(f"{b.name}: candidate L{pair[0]} → L{pair[1]} needs {g2.pairs} vector pairs (split-half cos "
                    f"{last['split_half_cos']}" + (f", native {last['native_split_half_cos']}"
                                                   if "native_split_half_cos" in last else "")
                    + "): it is probed with them, on validation items no earlier candidate used")
                seen.update(it.source for it in small["validation"])
                seen.update(it.source for it in items["validation"])
                n_pairs, trail = g2.pairs, trail + g2.trail
                small = behaviour_items(b, tok, cfg, n_pairs, gen, seen=seen)
                items = (small if cache.one_tokenizer else
                         behaviour_items(b, tgt.tokenizer, cfg, n_pairs, gen_t, seen=seen))
        g2 = grown[pair]
        return items["vector"], items["validation"], (g2.native if g2.pairs == n_pairs else None)

    k, chosen, v_native, layer_records = search_layers(
        tgt, pairs, items["vector"], items["validation"], search_t, cfg.eval.positions, cfg.eval.eval_batch_size,
        cfg.layer_search, log, cfg.eval.progress, prepare=prepare,
        cached=(lambda p: cache.is_cached(*p)) if cfg.fallback == "cached" else None)
    if "fallback" in chosen:
        log(f"  no layer steered on validation: L{pairs[k][0]} → L{pairs[k][1]} ({chosen['fallback']})"
            if cfg.layer_search else f"  L{pairs[k][0]} → L{pairs[k][1]} does not steer on validation (no layer "
            "search): judged on the test items as it is")
    ls, lt = pairs[k]
    if chosen["vector_pairs"] != n_pairs:     # no layer steered, the best came before the pairs grew: same vectors
        v_native = contrast_vector(tgt, items["vector"], lt)
    g = grown[(ls, lt)]
    v_first = g.small if g.pairs == n_pairs else None
    alpha = chosen["alpha"]
    chosen["search"]["random_rows"] = [cfg.eval.n_random, cfg.eval.n_random + cfg.eval.search_random]
    family = family_of(b.contrast, "contrast")
    prior = cache.text_map(ls, lt)
    diffs = cache.pool(ls, lt)
    families = cache.families
    kept = {s: d for s, d in diffs.items() if families[s] != family}
    amap = fit_from_differences(prior, kept, {s: families[s] for s in kept},
                                {"left_out": sorted(set(diffs) - set(kept)), "pairs": cfg.contrast_pairs})
    v_small = v_first if v_first is not None else contrast_vector(src, small["vector"], ls, name=b.name)
    v_tr = transfer_vector(v_small, amap, "direction")
    native_v = v_native.vector
    outlook = transfer_outlook(amap, v_small.vector) or {}
    cos = float(torch.nn.functional.cosine_similarity(v_tr.vector.double(), native_v.double(), dim=0))
    # cheap signals, on validation items only: the small model's own curve (steered as the study steers); A·v at
    # the answer position
    _, search_s = random_sets(cfg.eval, src.d_model)
    val = items["validation"]
    grid = grid_for(cfg.eval.positions)                # the small model steered as the study steers
    p_small, _ = grid(src, ls, small["validation"], torch.cat([v_small.unit()[None], search_s]),
                      [-alpha, alpha], v_small.median_norm, cfg.eval.eval_batch_size)
    p_ans, _ = answer_grid(tgt, lt, val, torch.cat([v_tr.unit()[None], search_t]), [-alpha, alpha],
                           v_native.median_norm, cfg.eval.eval_batch_size)
    signals = {"expected_cos": outlook.get("expected_cos"), "basis_share": outlook.get("basis_share"),
               "split_half_cos": v_small.meta.get("split_half_cos"),
               "native_split_half_cos": v_native.meta.get("split_half_cos"),
               "native_validation_z": chosen["z"], "small_z": _z(p_small, Balance(small["validation"]))[1],
               "answer_z": _z(p_ans, Balance(val))[1],
               "cos_to_native": cos}
    ec = signals["expected_cos"]
    signals["predicted_z"] = ec * chosen["z"] if ec is not None and math.isfinite(chosen["z"]) else None
    log(f"  map: λ {amap.meta['contrast']['lambda']}, {len(kept)} pool sets (left out {len(diffs) - len(kept)}); "
        f"predicted z of A·v {'—' if signals['predicted_z'] is None else format(signals['predicted_z'], '.2f')}, "
        f"cos(A·v, native) {cos:.3f}")
    ecfg = replace(cfg.eval, alphas=default_alphas(alpha, cfg.eval.alpha_steps), alpha_max=alpha)
    steering = evaluate_vectors(tgt, lt, items["test"], {"native": native_v, "transferred_direction": v_tr.vector},
                                v_native.median_norm, ecfg, validation=val,
                                validation_source="unused pairs of the behaviour's generate set",
                                alpha_record=chosen["search"], keep_items=True,
                                groups=[k2 for k2, n in items["test_sources"].items() for _ in range(n)])
    v = verdict(steering)
    d = cache.out / "behaviours" / slug(b.name)
    steering.pop("item_curves").save(d)
    for name, vec in (("small", v_small), ("native", v_native), ("transferred", v_tr)):
        vec.meta["data"] = {"kind": "contrast", "name": lookup(b.contrast, "contrast"), "family": family,
                            "n_examples": len(items["vector"])}
        vec.save(d / "vectors" / name)
    status = study_status(v)
    rec = {"behaviour": asdict(b), "family": family, "status": status, "layers": {"source": ls, "target": lt},
           "layer_search": [{k2: r[k2] for k2 in r if k2 != "search"} | {"probe": r["search"]["probe"]}
                            for r in layer_records],
           "layer_steers_on_validation": chosen["steers_forward"], "fallback": chosen.get("fallback"),
           "alpha": alpha,
           "items": {k2: len(items[k2]) for k2 in ("vector", "validation", "test")},
           "test_sources": items["test_sources"], "vector_pairs": trail, "signals": signals,
           "outlook": outlook,
           "map": {"lambda": amap.meta["contrast"]["lambda"], "sets": len(kept), "left_out": amap.meta["contrast"]
                   ["left_out"], "heldout_r2": prior.meta.get("metrics", {}).get("heldout", {}).get("r2"),
                   "pool_data_sha256": cache.pool_data(kept)},
           "steering": steering, "verdict": v, "seconds": round(time.time() - t0, 1)}
    atomic_write_text(d / "result.json", to_json(rec))
    return rec


def run_study(cfg: StudyConfig, out: str | Path, resume: bool = False, log=print) -> dict:
    """Every behaviour of ``cfg`` (finished ones read back when resuming), then ``results.json``."""
    if not cfg.behaviours:
        raise ConfigError("give at least one behaviour (--behaviours caa:refusal ...)", option="behaviours")
    behaviours = [parse_behaviour(s) for s in cfg.behaviours]
    for b in behaviours:
        load_contrasts(b.contrast, 1, role="contrast")      # unknown names and missing files fail now
        if b.test:
            load_contrasts(b.test, 1, role="test")

    def done(b: Behaviour) -> Path | None:
        f = Path(out) / "behaviours" / slug(b.name) / "result.json"
        return f if resume and f.is_file() else None

    read: dict[str, list] = {}      # each behaviour's generate set in the small model's tokens: read once

    def items_suffice(c: StudyCache):
        """Every behaviour still to run has vector, validation and test items at ``--pairs``, checked before the
        first one runs."""
        for b in behaviours:
            if not done(b):
                tok = c.tgt.tokenizer if c.one_tokenizer else c.src.tokenizer
                read[b.name] = generate_items(b, tok, cfg)
                behaviour_items(b, tok, cfg, gen=read[b.name])

    cache = StudyCache(cfg, Path(out), resume, log, check=items_suffice)
    records, t0 = {}, time.time()
    for b in behaviours:
        f = done(b)
        if f:
            r = json.loads(f.read_text(encoding="utf-8"))
            r["verdict"] = verdict(r["steering"])           # judged by this lrt's rules (the numbers are kept)
            r["status"] = study_status(r["verdict"])
            records[b.name] = r
            log(f"{b.name}: done before ({r['status']})")
            continue
        records[b.name] = run_behaviour(cache, b, log, gen=read.pop(b.name, None))
        r = records[b.name]
        log(f"  → {r['status']} (native {r['verdict']['vectors']['native']['status']}, "
            f"{r['seconds']:.0f} s)")
    results = {"kind": STUDY_KIND, "format_version": STUDY_FORMAT_VERSION, "command": "study",
               "settings": cache.settings, "models": cache.models(), "behaviours": records,
               "summary": summarize(records), "timings": {"total": round(time.time() - t0, 1),
                                                          **cache.timings}}
    atomic_write_text(cache.out / "results.json", to_json(results))
    return results
