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
import random
from pathlib import Path
from typing import Callable, Iterator

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


def _iter_hf(name: str) -> Iterator[dict]:
    from .hf import parse, rows

    for i, rec in enumerate(rows(name)):
        if "text" not in rec:
            raise CorpusError(f"data set {parse(name)[0]!r} has no 'text' column (columns: {sorted(rec)})")
        yield {"text": rec["text"], "doc_id": str(rec.get("id", rec.get("doc_id", i))),
               "source": rec.get("source", parse(name)[0])}


def _reader(corpus: str | os.PathLike) -> tuple[Callable[[], Iterator[dict]], bool]:
    """``(open, rereadable)``: ``open()`` streams the corpus' documents in file order (empty texts dropped);
    local files can be read again, a Hugging Face stream cannot. A data set name (``lrt:text``) is its file."""
    from .registry import resolve

    path = resolve(corpus, "corpus")
    if str(corpus).startswith("hf:"):
        files = []
    elif path.is_dir():
        files = sorted(p for p in path.rglob("*") if p.is_file())
    elif path.exists():
        files = [path]
    elif os.sep in str(corpus) or str(corpus).endswith((".jsonl", ".gz", ".txt", ".json")):
        raise CorpusError(f"corpus file {str(corpus)!r} does not exist; pass a JSONL(.gz) file with a 'text' field, "
                          "a text file, or a directory of them")
    else:
        files = []

    def read() -> Iterator[dict]:
        if files:
            docs = (d for f in files for d in (_iter_jsonl(f) if ".jsonl" in f.name or f.suffix == ".json"
                                                else _iter_plain(f)))
        else:
            docs = _iter_hf(str(corpus))
        n = 0
        for doc in docs:
            if isinstance(doc["text"], str) and doc["text"].strip():
                n += 1
                yield doc
        if n == 0:
            raise CorpusError(f"corpus {str(corpus)!r} holds no non-empty 'text'; nothing to read")
    return read, bool(files)


def iter_documents(corpus: str | os.PathLike, split: str | None = None,
                   heldout_percent: float = 5.0) -> Iterator[dict]:
    """Stream documents of ``corpus`` in file order; ``split`` in {None, "train", "heldout"} filters by document."""
    read, _ = _reader(corpus)
    for doc in read():
        if split is None or split_of(doc, heldout_percent) == split:
            yield doc


def sample_documents(corpus: str | os.PathLike, seed: int = 0, split: str | None = None,
                     heldout_percent: float = 5.0, chunk: int = 2000, buffer: int = 10_000) -> Iterator[dict]:
    """Documents of ``corpus`` in a seeded random order drawn from the whole corpus, so that the first N tokens are
    a sample of all of it, not of its first source (corpora are often sorted by source).

    Local files: one pass counts the documents, then each pass collects the next ``chunk`` documents of a seeded
    permutation (memory: ``chunk`` documents). A Hugging Face stream: a seeded shuffle buffer of ``buffer``
    documents, as ``datasets`` does.
    """
    read, rereadable = _reader(corpus)
    rng = random.Random(seed)
    keep = (lambda d: True) if split is None else (lambda d: split_of(d, heldout_percent) == split)  # noqa: E731
    if not rereadable:
        pool: list[dict] = []
        for doc in read():
            if len(pool) < buffer:
                pool.append(doc)
                continue
            k = rng.randrange(buffer)
            out, pool[k] = pool[k], doc
            if keep(out):
                yield out
        rng.shuffle(pool)
        yield from (d for d in pool if keep(d))
        return
    count = sum(1 for _ in read())
    order = list(range(count))
    rng.shuffle(order)
    for start in range(0, count, chunk):
        want = {i: pos for pos, i in enumerate(order[start:start + chunk])}
        got: list[dict | None] = [None] * len(want)
        for i, doc in enumerate(read()):
            if i in want:
                got[want[i]] = doc
        yield from (d for d in got if d is not None and keep(d))
