"""A study behaviour's data: what it is (``caa:refusal``, ``GEN=TEST`` files), its vector pairs, validation items
and test items (disjoint by prompt fingerprint), and how many pairs its small-model vector needs
(:func:`grow_pairs`). :mod:`.study` runs the rest."""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path

from ..data.contrasts import contrast_items, load_contrasts, once_per_prompt
from ..data.registry import is_name, lookup
from ..errors import DatasetError
from ..stats.balance import STABLE_SPLIT_HALF, balanced_pick
from ..steering.vectors import contrast_states, contrast_vector
from .config import StudyConfig


@dataclass
class Behaviour:
    name: str
    contrast: str
    test: str | None


def parse_behaviour(spec: str) -> Behaviour:
    """``caa:refusal`` (a shipped behaviour: generate and test parts), ``GEN=TEST`` files, or a generate file."""
    if "=" in spec:
        gen, test = spec.split("=", 1)
    elif is_name(spec):
        gen = spec
        try:
            test = spec if lookup(spec, "test") != lookup(spec, "contrast") else None
        except DatasetError:
            test = None
    else:
        gen, test = spec, None
    name = (lookup(gen, "contrast") or Path(gen).stem).replace("/generate", "")
    return Behaviour(name=name, contrast=gen, test=test)


def slug(name: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "-", name).strip("-")


def generate_items(b: Behaviour, tok, cfg: StudyConfig) -> list:
    """The behaviour's generate set read in ``tok``, each prompt once (vector pairs and validation items come from
    it)."""
    return once_per_prompt(contrast_items(tok, load_contrasts(b.contrast, role="contrast"), cfg.chat))


def test_file_items(b: Behaviour, tok, cfg: StudyConfig) -> list:
    """The behaviour's test set read in ``tok``, each prompt once (its first ``cfg.test_items``); none without a
    test set."""
    if not b.test:
        return []
    return once_per_prompt(contrast_items(tok, load_contrasts(b.test, role="test"), cfg.chat))[:cfg.test_items]


def from_generate(b: Behaviour, cfg: StudyConfig, n_test_file: int) -> int:
    """How many test items the generate set gives: all without a test set, else the shortfall under --test-fill."""
    if not b.test:
        return cfg.test_items
    return max(0, cfg.test_items - n_test_file) if cfg.test_fill else 0


def behaviour_items(b: Behaviour, tok, cfg: StudyConfig, n_pairs: int | None = None, gen: list | None = None,
                    seen: set | None = None) -> dict:
    """Vector pairs (the generate set's first ``n_pairs``, default ``cfg.pairs``), validation items and test items
    of one behaviour, disjoint by prompt fingerprint; ``gen``: the generate set already read in ``tok``. Test
    items: the test set's, then (--test-fill) unused generate pairs after the validation pick; ``test_sources``
    counts each. ``seen``: fingerprints of items an earlier pick already used to choose something (validation
    items of a search run before the pairs grew): never test items, nor validation items again."""
    seen = seen or set()
    gen = generate_items(b, tok, cfg) if gen is None else gen
    n_pairs = n_pairs or cfg.pairs
    vec = gen[:n_pairs]
    n_val = cfg.eval.search_items
    test = test_file_items(b, tok, cfg)
    if not b.test:
        test = [it for it in gen[n_pairs + n_val:n_pairs + n_val + cfg.test_items] if it.source not in seen]
    used = {it.source for it in vec} | {it.source for it in test} | seen
    val = balanced_pick([it for it in gen[n_pairs:] if it.source not in used], n_val)
    n_file = len(test)
    test = [it for it in test if it.source not in {it.source for it in vec}]
    if b.test and 2 * (n_file - len(test)) > n_file:
        raise DatasetError(f"behaviour {b.name}: {n_file - len(test)} of its {n_file} test items have the prompt of "
                           f"one of the {len(vec)} vector pairs — its test set repeats its generate set's prompts, "
                           "so a verdict on the rest would rest on a few items: give a test set whose prompts are "
                           "not in the generate set")
    sources = {"test set" if b.test else "generate set": len(test)}
    fill = from_generate(b, cfg, len(test)) if b.test else 0
    if fill:
        taken = used | {it.source for it in val}
        extra = balanced_pick([it for it in gen[n_pairs:] if it.source not in taken], fill)
        test = test + extra
        sources["generate set"] = len(extra)
    if len(vec) < 2 or len(val) < 2 or len(test) < 2:
        raise DatasetError(f"behaviour {b.name}: {len(vec)} vector pairs, {len(val)} validation and {len(test)} test "
                           f"items after removing overlaps ({len(gen)} distinct prompts in its generate set); each "
                           "needs at least 2 (fewer --pairs, or more data)")
    return {"vector": vec, "validation": val, "test": test, "test_sources": sources}


@dataclass
class Grown:
    """What :func:`grow_pairs` decided: the pair count, the trail that decided it and the vectors at that count."""

    pairs: int
    trail: list[dict]
    small: object
    """The small model's vector at the source layer from the generate set's first ``pairs``."""
    native: object | None = None
    """The large model's own vector at the target layer from the same pairs, where its stability was checked."""


def _stable(half) -> bool:
    return half is not None and half >= STABLE_SPLIT_HALF


def grow_pairs(src, gen: list, b: Behaviour, layer: int, cfg: StudyConfig, log=print, native=None) -> Grown:
    """How many vector pairs a behaviour gets: from ``cfg.pairs``, doubling up to ``cfg.max_pairs`` (and what the
    generate set ``gen`` spares: twice the validation items, so that their pick can balance the answer cells, and
    the test items it gives: all where there is no test set, the test set's shortfall under --test-fill) while the
    small model's vector at ``layer`` from ``gen``'s first pairs (the items the study's small-model vectors are
    computed from) has a split-half cosine below :data:`STABLE_SPLIT_HALF` (or none: an answer cell with fewer than
    two pairs) — or, with ``native = (tgt, gen_t, target_layer)`` (``gen_t``: the same generate set in the large
    model's tokens), while the large model's own vector at the target layer from those pairs has. Each step runs
    only its new pairs, on each model. Returns the count, the trail (pairs, layer, split-half cos; the target
    layer and the native vector's split-half cos where checked) and the vectors at that count."""
    n_test = min(cfg.test_items, len(load_contrasts(b.test, role="test"))) if b.test else 0
    spare = 2 * cfg.eval.search_items + from_generate(b, cfg, n_test)
    cap = max(cfg.pairs, min(cfg.max_pairs, len(gen) - spare))
    n, trail, states, t_states, vn = cfg.pairs, [], None, None, None

    def bar(side: str, lay: int) -> str | None:
        """The progress bar's name for one model's states at ``n`` pairs (none without --progress)."""
        return f"{b.name}: {n} vector pairs, {side} L{lay}" if cfg.eval.progress else None

    while True:
        states = contrast_states(src, gen[:n], layer, before=states, desc=bar("source", layer))
        v = contrast_vector(src, gen[:n], layer, name=b.name, states=states)
        half = v.meta.get("split_half_cos")
        step = {"pairs": min(n, len(gen)), "layer": layer, "split_half_cos": half and round(half, 3)}
        stable = _stable(half)
        if native is not None:
            tgt, gen_t, lt = native
            t_states = contrast_states(tgt, gen_t[:n], lt, before=t_states, desc=bar("target", lt))
            vn = contrast_vector(tgt, gen_t[:n], lt, name=b.name, states=t_states)
            nh = vn.meta.get("split_half_cos")
            step |= {"target_layer": lt, "native_split_half_cos": nh and round(nh, 3)}
            stable = stable and _stable(nh)
        trail.append(step)
        if stable or n >= cap:
            break
        n = min(2 * n, cap)
    if len(trail) > 1:
        both = native is not None
        log(f"{b.name}: vector pairs at source layer {layer}" + (f", target layer {native[2]}" if both else "") + ": "
            + " → ".join(f"{t['pairs']} (split-half cos {t['split_half_cos']}"
                         + (f", native {t['native_split_half_cos']}" if both else "") + ")" for t in trail)
            + ("" if stable else f"; still below {STABLE_SPLIT_HALF}"))
    return Grown(n, trail, v, vn)
