"""Labelled documents for probes, from corpora whose records carry the label (``../shared`` natural text).

Tasks: ``sentiment`` (movie reviews, doc ids ``pos/…`` / ``neg/…``), ``genre:X:Y`` (Brown categories X vs Y,
doc ids ``cX..``), ``source`` (the record's ``source`` field; every source with at least ``min_class`` documents).
Every document is in the probe's ``train`` or ``test`` split by a salted hash of its id (``PROBE_SALT``,
independent of the map's split), so a probe is always measured on documents it was not fitted on.
"""

from __future__ import annotations

import random
import re

from ..errors import DatasetError
from .corpus import iter_documents, split_of

PROBE_SALT = "lrt-probe:"


def _label(task: str, doc: dict) -> str | None:
    did = str(doc.get("doc_id", ""))
    if task == "sentiment":
        m = re.search(r"(^|/)(pos|neg)/", did)
        return m[2] if m else None
    if task.startswith("genre:"):
        _, a, b = task.split(":")
        m = re.match(r"^c([a-r])\d", did)
        return m[1] if m and m[1] in (a, b) and doc.get("source", "brown") == "brown" else None
    if task == "source":
        return doc.get("source")
    raise DatasetError(f"unknown probe task {task!r}; use sentiment, genre:X:Y (Brown letters a–r) or source")


def labelled_documents(corpus: str, task: str, test_percent: float = 30.0, per_class: int = 300,
                       min_class: int = 20, seed: int = 0) -> list[dict]:
    """``[{"text", "label", "doc_id", "split"}]``: up to ``per_class`` documents of each class (seeded choice),
    each in the ``train`` or ``test`` split by its id. Raises when fewer than two classes remain."""
    if task.startswith("genre:") and not re.fullmatch(r"genre:[a-r]:[a-r]", task):
        raise DatasetError(f"genre task must be genre:X:Y with Brown category letters a–r, got {task!r}")
    by_class: dict[str, list[dict]] = {}
    for doc in iter_documents(corpus):
        lab = _label(task, doc)
        if lab is not None:
            by_class.setdefault(lab, []).append(doc)
    by_class = {k: v for k, v in by_class.items() if len(v) >= min_class}
    if len(by_class) < 2:
        raise DatasetError(f"{corpus!r} has {len(by_class)} class(es) with at least {min_class} documents for task "
                           f"{task!r}; a probe needs two or more (use ../shared/data/natural_text.jsonl.gz)")
    out = []
    rng = random.Random(seed)
    for lab in sorted(by_class):
        docs = by_class[lab]
        rng.shuffle(docs)
        for d in docs[:per_class]:
            out.append({"text": d["text"], "label": lab, "doc_id": str(d.get("doc_id")),
                        "split": "test" if split_of(d, test_percent, PROBE_SALT) == "heldout" else "train"})
    return out
