"""lrt: linear representation transfer between language models of one family.

Top-level names are imported lazily, so ``lrt --help`` does not pay for torch and transformers.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "lrt.models", "LoadedModel": "lrt.models",
    "check_tokenizers": "lrt.tokenizer_check",
    "HarvestConfig": "lrt.harvest", "harvest_pairs": "lrt.harvest",
    "MomentStats": "lrt.stats", "solve_affine": "lrt.stats",
    "AffineMap": "lrt.maps",
    "FitConfig": "lrt.fit", "fit_map": "lrt.fit",
    "SteeringVector": "lrt.steering.vectors", "contrast_vector": "lrt.steering.vectors",
    "text_vector": "lrt.steering.vectors",
    "load_contrasts": "lrt.steering.data", "contrast_items": "lrt.steering.data",
    "concept_texts": "lrt.steering.concepts", "sentiment_items": "lrt.steering.concepts",
    "steer": "lrt.steering.apply", "scaled": "lrt.steering.apply",
    "transfer_vector": "lrt.steering.transfer",
    "EvalConfig": "lrt.steering.evaluate", "evaluate_vectors": "lrt.steering.evaluate",
    "ExperimentConfig": "lrt.steering.experiment", "run_experiment": "lrt.steering.experiment",
    "write_report": "lrt.report",
}

__all__ = sorted(_EXPORTS) + ["zoo", "errors"]


def __getattr__(name: str):
    if name in ("zoo", "errors"):
        return importlib.import_module(f"lrt.{name}")
    if name == "steer":   # `lrt.steering` is the subpackage; the context manager is exported as `lrt.steer`
        return importlib.import_module("lrt.steering.apply").steering
    if name in _EXPORTS:
        return getattr(importlib.import_module(_EXPORTS[name]), name)
    raise AttributeError(f"module 'lrt' has no attribute {name!r}")
