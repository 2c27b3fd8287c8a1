"""Where examples came from: a record of a vector's training examples (corpus or file, split, document ids,
fingerprint), and the overlap of such a record with evaluation items — the check that keeps test items out of
the vectors they judge."""

from __future__ import annotations

import hashlib

from .contrasts import Item, TextContrast


def fingerprint(ids: list[str]) -> str:
    return hashlib.sha256("\n".join(sorted(ids)).encode("utf-8")).hexdigest()


def data_record(data: list[Item] | TextContrast, contrast_file: str | None = None) -> dict:
    """What a vector was computed from: the source (corpus and split, or contrast file and its sha256), the ids of
    its documents or prompts, and their fingerprint."""
    if isinstance(data, TextContrast):
        ids = [i for i in data.sources if i]
        rec = {"kind": "texts", **data.origin}
    else:
        ids = [it.source for it in data if it.source]
        from .registry import describe

        d = describe(contrast_file, "contrast") if contrast_file else {}
        rec = {"kind": "contrast", "file": str(contrast_file) if contrast_file else None,
               "file_sha256": d.get("sha256"), "name": d.get("name"), "family": d.get("family")}
    return {**rec, "n_examples": len(ids), "fingerprint": fingerprint(ids), "documents": sorted(set(ids))}


def overlap(record: dict | None, items: list[Item]) -> list[str]:
    """Ids of evaluation items that were also among a vector's examples (empty when there is no record)."""
    if not record:
        return []
    used = set(record.get("documents", ()))
    return sorted({it.source for it in items if it.source and it.source in used})
