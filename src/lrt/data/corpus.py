"""Corpora: stream documents from JSONL(.gz), plain text, or a Hugging Face `datasets` name.

A document is a dict with at least ``text``; ``doc_id`` and ``source`` are kept when present.
The held-out split is by document and deterministic: a document belongs to the split named by
a hash of its id (or of its text when it has no id), so every tool sees the same split.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import os
from pathlib import Path
from typing import Iterator

from ..errors import CorpusError


def split_of(doc: dict, heldout_percent: float = 5.0, salt: str = "") -> str:
    """Return ``"heldout"`` or ``"train"`` for a document, from a hash of its id.

    Different ``salt`` s give independent splits (the map's held-out split is salted, so it also cuts
    through text that is itself a held-out split, such as the zoo's).
    """
    key = salt + str(doc.get("doc_id") or doc["text"][:512])
    h = int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:8], "big")
    return "heldout" if (h % 10_000) < heldout_percent * 100 else "train"


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8")


def _iter_jsonl(path: Path) -> Iterator[dict]:
    with _open_text(path) as f:
        for lineno, line in enumerate(f, 1):
            line = line.strip()
            if not line:
                continue
            try:
                rec = json.loads(line)
            except json.JSONDecodeError as e:
                raise CorpusError(f"{path}:{lineno}: not valid JSON ({e.msg}); a JSONL corpus has one object a line") from None
            if not isinstance(rec, dict) or "text" not in rec:
                keys = sorted(rec) if isinstance(rec, dict) else type(rec).__name__
                raise CorpusError(f"{path}:{lineno}: record has no 'text' field (has {keys}); "
                                  "each line must be an object with a 'text' string")
            rec.setdefault("doc_id", f"{path.name}:{lineno}")
            yield rec


def _iter_plain(path: Path) -> Iterator[dict]:
    with _open_text(path) as f:
        text = f.read()
    # Blank-line separated paragraphs become documents, so the split is not one giant document.
    for i, chunk in enumerate(c for c in text.split("\n\n") if c.strip()):
        yield {"text": chunk, "doc_id": f"{path.name}:{i}", "source": path.name}


def _iter_hf(name: str, split: str = "train") -> Iterator[dict]:
    try:
        import datasets  # optional
    except ImportError:
        raise CorpusError(f"corpus {name!r} is not a file; to stream a Hugging Face data set install `datasets` "
                          "(pip install datasets), or pass a JSONL/text file") from None
    config = None
    if ":" in name:
        name, config = name.split(":", 1)
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=True)
    except Exception as e:  # noqa: BLE001 - datasets raises many types
        raise CorpusError(f"could not open data set {name!r}: {e}") from None
    for i, rec in enumerate(ds):
        if "text" not in rec:
            raise CorpusError(f"data set {name!r} has no 'text' column (columns: {sorted(rec)})")
        yield {"text": rec["text"], "doc_id": str(rec.get("id", i)), "source": name}


def iter_documents(corpus: str | os.PathLike, split: str | None = None,
                   heldout_percent: float = 5.0) -> Iterator[dict]:
    """Stream documents of ``corpus``; ``split`` in {None, "train", "heldout"} filters by document."""
    path = Path(corpus)
    if path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.exists():
        files = [path]
    elif os.sep in str(corpus) or str(corpus).endswith((".jsonl", ".gz", ".txt", ".json")):
        raise CorpusError(f"corpus file {str(corpus)!r} does not exist; pass a JSONL(.gz) file with a 'text' field, "
                          "a text file, or a directory of them")
    else:
        files = []
    if files:
        def gen():
            for f in files:
                yield from (_iter_jsonl(f) if ".jsonl" in f.name or f.suffix == ".json" else _iter_plain(f))
        docs = gen()
    else:
        docs = _iter_hf(str(corpus))
    n = 0
    for doc in docs:
        if not isinstance(doc["text"], str) or not doc["text"].strip():
            continue
        n += 1
        if split is None or split_of(doc, heldout_percent) == split:
            yield doc
    if n == 0:
        raise CorpusError(f"corpus {str(corpus)!r} holds no non-empty 'text'; nothing to read")
