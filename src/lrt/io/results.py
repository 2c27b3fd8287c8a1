"""One results envelope for every command that evaluates (``lrt demo``, ``lrt evaluate``), read by ``lrt report``
(``lrt sweep-layers`` writes kind ``lrt_sweep``: see :mod:`lrt.pipelines.sweep`).

``results.json``::

    kind: "lrt_results", format_version: 2, command: "demo" | "evaluate",
    settings: the fully resolved configuration (flat: option → value),
    models:   {"source": {name, layer, ...} | null, "target": {name, layer, ...}},
    map:      the map's method, ridge, tokens, metrics, norms, seconds | null (no map in this run),
    vectors:  {concept, cosine_to_native: {name: cosine}, norms: {name: norm}, ...},
    steering: the evaluation (lrt.evaluate.steering.evaluate_vectors),
    verdict:  lrt.evaluate.verdict.verdict of it,
    timings:  {step: seconds}
"""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import ArtifactError
from .files import atomic_write_text, to_json

KIND = "lrt_results"
FORMAT_VERSION = 2
REQUIRED = ("command", "settings", "models", "vectors", "steering", "verdict")
SWEEP_KIND = "lrt_sweep"            # ``lrt sweep-layers``: models, source/target layers, pairs, stitched, ...
SWEEP_FORMAT_VERSION = 1
SWEEP_REQUIRED = ("command", "models", "source_layers", "target_layers", "pairs")
SAE_INIT_KIND = "lrt_sae_init"      # ``lrt sae compare-init``: curves, charges, accountings, zero-shot FVU
SAE_INIT_FORMAT_VERSION = 1
SAE_INIT_REQUIRED = ("command", "models", "target_fvu", "charges", "accountings", "curves")
STUDY_KIND = "lrt_study"            # ``lrt study``: settings, models, behaviours, summary
STUDY_FORMAT_VERSION = 1
STUDY_REQUIRED = ("command", "settings", "models", "behaviours", "summary")


def make_results(command: str, settings: dict, models: dict, vectors: dict, steering: dict, verdict: dict,
                 map: dict | None = None, timings: dict | None = None) -> dict:   # noqa: A002 - the section's name
    return {"kind": KIND, "format_version": FORMAT_VERSION, "command": command, "settings": settings,
            "models": {"source": models.get("source"), "target": models["target"]}, "map": map, "vectors": vectors,
            "steering": steering, "verdict": verdict,
            "timings": {k: round(v, 2) for k, v in (timings or {}).items()}}


def write_results(directory: str | Path, results: dict) -> Path:
    path = Path(directory) / "results.json"
    atomic_write_text(path, to_json(results))
    return path


def load_results(path: str | Path) -> dict:
    """Read a ``results.json`` (or the directory holding it); every problem is one :class:`ArtifactError`."""
    p = Path(path)
    f = p / "results.json" if p.is_dir() else p
    if not f.is_file():
        raise ArtifactError(f"{f} does not exist; run `lrt demo` or `lrt evaluate` first")
    try:
        results = json.loads(f.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{f} is not valid JSON ({e})") from None
    kinds = {KIND: (FORMAT_VERSION, REQUIRED), SWEEP_KIND: (SWEEP_FORMAT_VERSION, SWEEP_REQUIRED),
             SAE_INIT_KIND: (SAE_INIT_FORMAT_VERSION, SAE_INIT_REQUIRED),
             STUDY_KIND: (STUDY_FORMAT_VERSION, STUDY_REQUIRED)}
    if not isinstance(results, dict) or results.get("kind") not in kinds:
        raise ArtifactError(f"{f} is not an lrt results file (no kind {', '.join(map(repr, kinds))})")
    version, required = kinds[results["kind"]]
    if results.get("format_version", 0) > version:
        raise ArtifactError(f"{f} has format version {results['format_version']}, newer than this lrt "
                            f"({version}); upgrade lrt")
    missing = [k for k in required if k not in results]
    if missing:
        raise ArtifactError(f"{f} lacks the section(s) {', '.join(missing)}; it was not written by lrt demo or "
                            "lrt evaluate of this version: re-run that command")
    return results
