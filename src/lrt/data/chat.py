"""Chat-formatted documents for map data: A/B contrast sets or JSONL chat turns rendered with the tokenizer's chat
template, and a seeded interleaving of them into a text stream at a given share of the characters.

A map meant to carry vectors of an instruct model is best fitted on text like the text those vectors live in
(chat turns, answer tokens); the LRT paper fitted its instruct maps on a 33% chat mixture.
"""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Iterable, Iterator

from ..errors import DatasetError
from .contrasts import load_contrasts, read_text


def _render(tokenizer, messages: list[dict], where: str) -> str:
    if not getattr(tokenizer, "chat_template", None):
        raise DatasetError(f"{where}: chat data needs a tokenizer with a chat template; this one has none",
                           option="mix")
    return tokenizer.apply_chat_template(messages, tokenize=False)


def chat_documents(path: str | Path, tokenizer) -> list[dict]:
    """Documents of one chat file: each A/B record gives two (the question answered each way); a JSONL record with
    ``messages`` gives one. ``source`` is ``chat:<name>`` (the folder of a CAA file, else the file's stem)."""
    from .registry import lookup, resolve

    p = resolve(path, "contrast")
    if not p.is_file():
        raise DatasetError(f"chat data file {str(p)!r} does not exist", option="mix")
    named = lookup(str(path), "contrast")
    name = (named.split(":", 1)[1].split("/")[0] if named else
            p.parent.name if p.stem.endswith(("_dataset", "dataset_ab")) else p.stem)
    text = read_text(p)
    first = text.lstrip()[:1]
    docs = []
    if first == "{" and "messages" in text[:2000]:
        for i, line in enumerate(text.splitlines()):
            if line.strip():
                rec = json.loads(line)
                docs.append({"text": _render(tokenizer, rec["messages"], f"{p.name}:{i + 1}"),
                             "doc_id": f"{p}:{i}", "source": f"chat:{name}"})
        return docs
    for i, c in enumerate(load_contrasts(p)):
        for tag, answer in (("a", c.positive), ("b", c.negative)):
            text = _render(tokenizer, [{"role": "user", "content": c.prompt},
                                       {"role": "assistant", "content": answer.strip()}], f"{p.name} record {i}")
            docs.append({"text": text, "doc_id": f"{p}:{i}:{tag}", "source": f"chat:{name}"})
    return docs


def interleave(main: Iterable[dict], extra: list[dict], share: float, seed: int = 0) -> Iterator[dict]:
    """``main`` with ``extra`` (shuffled, seeded) mixed in so that about ``share`` of the characters come from
    ``extra``; when one runs out the other continues."""
    extra = list(extra)
    random.Random(seed).shuffle(extra)
    chars = {"main": 0, "extra": 0}
    it, k = iter(main), 0
    while True:
        want_extra = k < len(extra) and chars["extra"] <= share * max(1, chars["main"] + chars["extra"])
        if want_extra:
            doc, k = extra[k], k + 1
            chars["extra"] += len(doc["text"])
            yield doc
            continue
        doc = next(it, None)
        if doc is None:
            yield from extra[k:]
            return
        chars["main"] += len(doc["text"])
        yield doc
