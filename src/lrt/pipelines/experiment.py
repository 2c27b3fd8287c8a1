"""The whole transfer experiment: fit a map, compute vectors on both models, transfer, evaluate, save.

``lrt demo`` runs this on the embedded family; ``lrt evaluate`` runs its evaluation half on saved vectors and
writes the same results envelope (:mod:`lrt.io.results`).
"""

from __future__ import annotations

import time
from dataclasses import replace
from pathlib import Path

import torch

from ..data.concepts import neutral_sequences, sentiment_items
from ..data.contrasts import Item, contrast_items, load_contrasts, once_per_prompt
from ..data.provenance import overlap
from ..errors import DatasetError
from ..evaluate.config import EvalConfig, TestSetConfig
from ..evaluate.steering import evaluate_vectors
from ..evaluate.verdict import verdict
from ..io.files import ensure_writable, write_config
from ..io.config import flatten
from ..io.results import make_results, write_results
from ..maps.affine import AffineMap
from ..maps.fit import fit_map
from ..models.load import LoadedModel
from ..stats.balance import balanced_pick
from ..steering.transfer import transfer_vector
from ..steering.vectors import compute_vector, vector_data
from .config import ExperimentConfig

MAP_SECTION = ("method", "ridge", "tokens", "metrics", "norms", "seconds", "document_tokens_by_source", "warnings")


def test_items(cfg: TestSetConfig, lm: LoadedModel) -> tuple[list[Item], list[Item] | None]:
    """The evaluation items (A/B test file, or sentiment items) and the capability items (or None)."""
    if cfg.test:
        items = once_per_prompt(contrast_items(lm.tokenizer, load_contrasts(cfg.test, role="test"), cfg.chat))
    else:
        lowercase = lm.name.startswith("zoo-") if cfg.lowercase is None else cfg.lowercase
        items = sentiment_items(lm.tokenizer, cfg.eval_corpus, lowercase=lowercase, split=cfg.test_split,
                                seed=cfg.seed)
    capability = (contrast_items(lm.tokenizer, load_contrasts(cfg.mmlu, cfg.mmlu_items, role="test"), cfg.chat)
                  if cfg.mmlu else None)
    return items, capability


def validation_items(cfg: TestSetConfig, lm: LoadedModel, test: list[Item], records: dict[str, dict], n: int
                     ) -> tuple[list[Item] | None, str | None]:
    """Up to ``n`` items to choose α on, none of them a test item or one of a vector's own examples: from
    ``cfg.validation``, else the unused pairs of the native vector's contrast set (half per matching letter where
    the set has both: :func:`lrt.stats.balance.balanced_pick`); (None, None) when neither
    exists (the evaluation then splits the test set)."""
    used = {d for rec in records.values() if rec for d in rec.get("documents", ())} | {it.source for it in test}
    if cfg.validation:
        path, source = cfg.validation, f"given: {cfg.validation}"
    else:
        native = records.get("native") or {}
        path = native.get("name") or native.get("file")
        if native.get("kind") != "contrast" or not path:
            return None, None
        source = f"pairs of {path} that no vector was computed from"
    items = [it for it in contrast_items(lm.tokenizer, load_contrasts(path, role="test" if cfg.validation else
                                                                       "contrast"), cfg.chat)
             if it.source not in used]
    if len(items) < 2:
        return None, None
    return balanced_pick(items, n), source


def evaluate_on(lm: LoadedModel, layer, vectors: dict[str, torch.Tensor], median_norm: float,
                testset: TestSetConfig, eval_cfg: EvalConfig, records: dict[str, dict] | None = None) -> dict:
    """Evaluate named vectors on ``lm`` at ``layer`` on the configured test set (with the KL side effect).

    ``records`` (a vector's ``meta["data"]``, by name): a test item that was among a vector's own examples is
    refused (:class:`DatasetError`), or with ``allow_overlap`` counted in ``steering["data_overlap"]``.
    """
    items, capability = test_items(testset, lm)
    shared = {name: overlap(rec, items) for name, rec in (records or {}).items()}
    shared = {name: ids for name, ids in shared.items() if ids}
    if shared and not testset.allow_overlap:
        name, ids = next(iter(shared.items()))
        raise DatasetError(f"{len(ids)} of the {len(items)} test items come from documents the vector {name!r} was "
                           f"computed from (e.g. {ids[0]}); draw the vector's examples from the train split and the "
                           "test items from the held-out split, or allow the overlap explicitly",
                           option="allow_overlap")
    validation, source = (validation_items(testset, lm, items, records or {}, eval_cfg.search_items)
                          if eval_cfg.alpha_search else (None, None))
    result = evaluate_vectors(lm, layer, items, vectors, median_norm, eval_cfg,
                              neutral_ids=neutral_sequences(lm.tokenizer, testset.eval_corpus, eval_cfg.kl_sequences),
                              capability_items=capability, validation=validation, validation_source=source)
    result["data_overlap"] = {name: len(ids) for name, ids in shared.items()}
    return result


def cosines_to_native(vectors: dict[str, torch.Tensor]) -> dict[str, float]:
    native = vectors["native"].float()
    return {n: float(torch.nn.functional.cosine_similarity(v.float(), native, dim=0))
            for n, v in vectors.items() if n != "native"}


def run_experiment(cfg: ExperimentConfig, out: str | Path) -> dict:
    """Run everything, write artifacts, ``config.json`` and ``results.json`` under ``out``; return the results."""
    t_start = time.time()
    timings = {}
    src, tgt = cfg.pair.load(cfg.load)
    ls, lt = cfg.layers(src, tgt)
    cfg = replace(cfg, pair=replace(cfg.pair, source_layer=ls, target_layer=lt))
    timings["load"] = time.time() - t_start

    t = time.time()
    amap: AffineMap = fit_map(src, tgt, ls, lt, cfg.harvest, cfg.fit)
    timings["fit_map"] = time.time() - t

    t = time.time()
    data = vector_data(cfg.vectors, src.tokenizer)      # one tokenizer: the same examples on both models
    v_src = compute_vector(src, amap.source_layer, cfg.vectors, data)
    v_nat = compute_vector(tgt, amap.target_layer, cfg.vectors, data)
    v_dir = transfer_vector(v_src, amap, "direction", cfg.rescale)
    v_pt = transfer_vector(v_src, amap, "point", cfg.rescale)
    timings["vectors"] = time.time() - t

    vectors = {"native": v_nat.vector, "transferred_direction": v_dir.vector, "transferred_point": v_pt.vector}
    t = time.time()
    records = {n: v.meta.get("data") for n, v in (("native", v_nat), ("transferred_direction", v_dir),
                                                  ("transferred_point", v_pt))}
    steering = evaluate_on(tgt, amap.target_layer, vectors, amap.meta["norms"]["target"]["median"], cfg.testset,
                           cfg.eval, records)
    timings["evaluate"] = time.time() - t
    timings["total"] = time.time() - t_start

    models = {"source": {"name": src.name, "layers": src.n_layers, "width": src.d_model, "layer": amap.source_layer},
              "target": {"name": tgt.name, "layers": tgt.n_layers, "width": tgt.d_model, "layer": amap.target_layer}}
    vec = {"source_norm": v_src.norm, "native_norm": v_nat.norm, "n_pairs": v_src.n_pairs,
           "concept": v_src.meta.get("concept"), "cosine_to_native": cosines_to_native(vectors)}
    settings = flatten(cfg)
    results = make_results("demo", settings, models, vec, steering, verdict(steering),
                           map={k: amap.meta[k] for k in MAP_SECTION}, timings=timings)
    out = ensure_writable(out)
    amap.save(out / "map")
    for name, v in (("source", v_src), ("native", v_nat), ("transferred-direction", v_dir),
                    ("transferred-point", v_pt)):
        v.save(out / "vectors" / name)
    write_config(out, settings)
    write_results(out, results)
    return results
