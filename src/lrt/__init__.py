"""lrt: linear representation transfer between language models of one family.

Top-level names are imported lazily, so ``lrt --help`` does not pay for torch and transformers.
"""

from __future__ import annotations

import importlib

from ._lazy import lazy_exports

__version__ = "0.1.0"

_EXPORTS = {
    "load_model": "lrt.models.load", "LoadedModel": "lrt.models.load",
    "check_tokenizers": "lrt.models.tokenizer_check",
    "HarvestConfig": "lrt.harvest.config", "harvest_pairs": "lrt.harvest.paired",
    "run_with_capture": "lrt.harvest.capture",
    "MomentStats": "lrt.stats.moments", "solve_affine": "lrt.maps.solve",
    "AffineMap": "lrt.maps.affine",
    "FitConfig": "lrt.maps.config", "fit_map": "lrt.maps.fit",
    "SteeringVector": "lrt.steering.vectors", "contrast_vector": "lrt.steering.vectors",
    "text_vector": "lrt.steering.vectors",
    "load_contrasts": "lrt.data.contrasts", "contrast_items": "lrt.data.contrasts",
    "concept_texts": "lrt.data.concepts", "sentiment_items": "lrt.data.concepts",
    "steer": "lrt.steering.apply", "scaled": "lrt.steering.apply",
    "transfer_vector": "lrt.steering.transfer",
    "EvalConfig": "lrt.evaluate.config", "evaluate_vectors": "lrt.evaluate.steering",
    "ExperimentConfig": "lrt.pipelines.config", "run_experiment": "lrt.pipelines.experiment",
    "write_report": "lrt.report.html",
}

__all__ = sorted(_EXPORTS) + ["zoo", "errors"]


_exports = lazy_exports(__name__, _EXPORTS)


def __getattr__(name: str):
    if name in ("zoo", "errors"):
        return importlib.import_module(f"lrt.{name}")
    if name == "steer":   # `lrt.steering` is the subpackage; the context manager is exported as `lrt.steer`
        return importlib.import_module("lrt.steering.apply").steering
    return _exports(name)
