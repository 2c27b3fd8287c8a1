"""The whole transfer experiment: fit a map, compute vectors on both models, transfer, evaluate, save.

``lrt demo`` is this with the embedded family; ``lrt evaluate`` reuses its evaluation half.
"""

from __future__ import annotations

import json
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch

from ..artifacts import atomic_write_text, ensure_writable
from ..fit import FitConfig, fit_map
from ..harvest import HarvestConfig
from ..maps import AffineMap
from ..models import LoadedModel, default_layers, load_model
from ..tokenizer_check import check_tokenizers
from .concepts import concept_texts, sentiment_items
from .data import contrast_items, load_contrasts
from .evaluate import EvalConfig, default_alphas, evaluate_vectors
from .transfer import transfer_vector
from .vectors import SteeringVector, contrast_vector, text_vector


@dataclass
class ExperimentConfig:
    source: str = "zoo-xs"
    target: str = "zoo-m"
    source_layer: int | str | None = None
    target_layer: int | str | None = None
    corpus: str | None = None           # text for the map (default: the shipped held-out split)
    tokens: int = 60_000
    context: int = 128
    batch_size: int = 16
    concept: str = "sentiment"          # built-in concept, used when no contrast file is given
    concept_corpus: str | None = None   # texts for the concept vectors (default: shipped review sample)
    eval_corpus: str | None = None      # held-out reviews for evaluation items (default: shipped held-out)
    contrast: str | None = None         # A/B contrast file (CAA format) for the vectors
    test: str | None = None             # A/B test file for evaluation
    max_pairs: int = 300
    method: str = "mean"
    position: str = "mean"
    chat: bool = False
    lowercase: bool = False
    rescale: bool = False
    alphas: list[float] = field(default_factory=default_alphas)
    n_random: int = 12
    dtype: str = "float32"
    device: str = "cpu"
    seed: int = 0
    progress: bool = True


def neutral_sequences(tokenizer, corpus: str, n: int = 8, length: int = 64) -> list[list[int]]:
    """Token sequences of non-review held-out text, for the KL side-effect measure."""
    from ..corpus import iter_documents

    out = []
    for d in iter_documents(corpus):
        if d.get("source") == "movie_reviews":
            continue
        ids = tokenizer(d["text"], verbose=False)["input_ids"]
        if len(ids) >= length:
            out.append(ids[:length])
        if len(out) == n:
            break
    return out


def _vectors(cfg: ExperimentConfig, lm: LoadedModel, layer, items_or_texts) -> SteeringVector:
    if cfg.contrast:
        return contrast_vector(lm, items_or_texts, layer, cfg.method, name=Path(cfg.contrast).stem)
    return text_vector(lm, items_or_texts, layer, cfg.position)


def run_experiment(cfg: ExperimentConfig, out: str | Path) -> dict:
    """Run everything, write artifacts and ``results.json`` under ``out``, return the results."""
    from .. import zoo

    out = ensure_writable(out)
    t_start = time.time()
    timings = {}
    src = load_model(cfg.source, cfg.dtype, cfg.device)
    tgt = load_model(cfg.target, cfg.dtype, cfg.device)
    check_tokenizers(src.tokenizer, tgt.tokenizer, src.name, tgt.name)
    ls, lt = default_layers(src, tgt, cfg.source_layer, cfg.target_layer)
    timings["load"] = time.time() - t_start

    heldout = str(zoo.heldout_text())
    t = time.time()
    hc = HarvestConfig(corpus=cfg.corpus or heldout, tokens=cfg.tokens, context=cfg.context,
                       batch_size=cfg.batch_size, progress=cfg.progress)
    amap: AffineMap = fit_map(src, tgt, ls, lt, hc, FitConfig(seed=cfg.seed))
    amap.save(out / "map")
    timings["fit_map"] = time.time() - t

    t = time.time()
    if cfg.contrast:
        data = contrast_items(src.tokenizer, load_contrasts(cfg.contrast, cfg.max_pairs), cfg.chat)
    else:
        data = concept_texts(cfg.concept, cfg.concept_corpus or str(zoo.review_sample()),
                             split=None, limit=cfg.max_pairs, seed=cfg.seed)
    v_src = _vectors(cfg, src, amap.source_layer, data)
    v_nat = _vectors(cfg, tgt, amap.target_layer, data)
    v_dir = transfer_vector(v_src, amap, "direction", cfg.rescale)
    v_pt = transfer_vector(v_src, amap, "point", cfg.rescale)
    for name, v in (("source", v_src), ("native", v_nat), ("transferred-direction", v_dir),
                    ("transferred-point", v_pt)):
        v.save(out / "vectors" / name)
    timings["vectors"] = time.time() - t

    if cfg.test:
        items = contrast_items(tgt.tokenizer, load_contrasts(cfg.test), cfg.chat)
    else:
        items = sentiment_items(tgt.tokenizer, cfg.eval_corpus or heldout, lowercase=cfg.lowercase, seed=cfg.seed)
    vectors = {"native": v_nat.vector, "transferred_direction": v_dir.vector, "transferred_point": v_pt.vector}
    t = time.time()
    steering = evaluate_vectors(tgt, amap.target_layer, items, vectors, amap.meta["norms"]["target"]["median"],
                                EvalConfig(alphas=cfg.alphas, n_random=cfg.n_random, seed=cfg.seed),
                                neutral_ids=neutral_sequences(tgt.tokenizer, cfg.eval_corpus or heldout))
    timings["evaluate"] = time.time() - t
    timings["total"] = time.time() - t_start

    cos = lambda a, b: float(torch.nn.functional.cosine_similarity(a, b, dim=0))  # noqa: E731
    results = {
        "kind": "lrt_results", "format_version": 1, "settings": asdict(cfg),
        "models": {"source": {"name": src.name, "layers": src.n_layers, "width": src.d_model, "layer": amap.source_layer},
                   "target": {"name": tgt.name, "layers": tgt.n_layers, "width": tgt.d_model, "layer": amap.target_layer}},
        "map": {k: amap.meta[k] for k in ("method", "ridge", "tokens", "metrics", "norms", "seconds")},
        "vectors": {"source_norm": v_src.norm, "native_norm": v_nat.norm, "n_pairs": v_src.n_pairs,
                    "concept": v_src.meta.get("concept"),
                    "cosine_to_native": {"transferred_direction": cos(v_dir.vector, v_nat.vector),
                                         "transferred_point": cos(v_pt.vector, v_nat.vector)}},
        "steering": steering, "timings": {k: round(v, 2) for k, v in timings.items()},
    }
    results["verdict"] = verdict(results)
    atomic_write_text(out / "results.json", json.dumps(results, indent=2))
    return results


def verdict(results: dict) -> dict:
    """Plain statements a reader wants first: does the transferred vector beat random, which mode wins."""
    s = results["steering"]
    key = "slope_monotonic" if "monotonic_range" in s else "slope"
    slopes = {n: c[key] for n, c in s["curves"].items()}
    rmax = s["random"]["max_abs_slope"]  # v and −v are equally likely random draws: beat both
    comp = s.get("comparison", {})
    modes = {m: comp.get(m, {}).get("mean_r_odd", float("nan")) for m in ("transferred_direction",
                                                                           "transferred_point")}
    best = max(modes, key=lambda m: (modes[m] == modes[m], modes[m]))
    return {"slope": {n: slopes[n] for n in ("native", "transferred_direction", "transferred_point")},
            "max_abs_random_slope": rmax,
            "native_beats_all_random": rmax is not None and slopes["native"] > rmax,
            "transferred_beats_all_random": rmax is not None and slopes["transferred_direction"] > rmax,
            "better_transfer_mode": best.replace("transferred_", ""),
            "mean_r_odd": modes, "mean_r_odd_random": comp.get("random_mean", {}).get("mean_r_odd")}
