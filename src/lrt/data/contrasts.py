"""Contrastive data: one record type ``{prompt, positive, negative}`` from four source formats.

- CAA A/B JSON (``question``, ``answer_matching_behavior``, ``answer_not_matching_behavior``);
- Anthropic model-written-evals JSONL (same keys, answers like " Yes"/" No");
- plain JSONL ``{prompt, positive, negative}``; MMLU-style ``{prompt, correct, incorrect}`` also reads;
- unpaired labelled text sets (two lists of texts), contrasted by their means: :class:`TextContrast`.

Paired records become token-level :class:`Item` s: the *answer token* is the first token where
``prompt + positive`` and ``prompt + negative`` tokenize differently.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import DatasetError

ANSWER_PREFIX = "\n\nAnswer:"


@dataclass
class Contrast:
    prompt: str
    positive: str
    negative: str


@dataclass
class TextContrast:
    """Two labelled text sets; the vector is mean(h | positive) − mean(h | negative)."""

    positive: list[str]
    negative: list[str]
    name: str = "texts"
    sources: list[str] = field(default_factory=list)
    """Document ids of the texts (positive then negative), for the overlap check against test items."""
    origin: dict = field(default_factory=dict)
    """Where the texts were drawn from: corpus and split."""


@dataclass
class Item:
    """A tokenized evaluation/contrast item: score positive vs negative next tokens after ``ids``."""

    ids: list[int]
    positive: list[int]
    negative: list[int]
    label: str = ""
    source: str = ""
    """The document id (or prompt fingerprint) the item was made from; empty for built-in prompts."""
    answers: tuple[str, ...] = ()
    """The matching and the other option's text when the answers are option letters ("(A) Yes" / "(B) No"), so that
    a mean over items can weigh Yes- and No-matching items alike (:class:`lrt.stats.balance.Balance`)."""


_KEY_SETS = (("question", "answer_matching_behavior", "answer_not_matching_behavior"),
             ("prompt", "positive", "negative"),
             ("prompt", "correct", "incorrect"))


def _record(rec: dict, where: str) -> Contrast:
    for q, pos, neg in _KEY_SETS:
        if q in rec and pos in rec and neg in rec:
            a, b = rec[pos], rec[neg]
            if isinstance(a, list):   # model-written-evals sometimes lists several matching answers
                a = a[0]
            if isinstance(b, list):
                b = b[0]
            if not str(a).strip() or not str(b).strip():
                raise DatasetError(f"{where}: empty answer; both answers must be non-empty")
            return Contrast(str(rec[q]), str(a), str(b))
    raise DatasetError(f"{where}: missing keys; a record needs question/answer_matching_behavior/"
                       f"answer_not_matching_behavior or prompt/positive/negative (it has {sorted(rec)})")


def read_text(path: Path) -> str:
    """A text file's contents (``.gz``: decompressed)."""
    if path.suffix == ".gz":
        with gzip.open(path, "rt", encoding="utf-8") as f:
            return f.read()
    return path.read_text(encoding="utf-8")


def load_contrasts(path: str | Path, limit: int | None = None, role: str = "contrast") -> list[Contrast]:
    """Read a CAA JSON array, or a JSONL file of records (model-written-evals or plain), by path or by data set
    name (``caa:refusal``: the generate set for ``role="contrast"``, the test set for ``role="test"``)."""
    from .hf import PREFIX, rows
    from .registry import resolve

    if str(path).startswith(PREFIX):
        out = [_record(r, f"{path} row {i}") for i, r in enumerate(rows(str(path)))]
        return out[:limit] if limit else out
    path = resolve(path, role)
    if not path.exists():
        raise DatasetError(f"data file {str(path)!r} does not exist")
    text = read_text(path)
    try:
        data = json.loads(text)
        records = data if isinstance(data, list) else [data]
        where = [f"{path.name} record {i}" for i in range(len(records))]
    except json.JSONDecodeError:
        records, where = [], []
        for lineno, line in enumerate(text.splitlines(), 1):
            if line.strip():
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as e:
                    raise DatasetError(f"{path.name}:{lineno}: not valid JSON ({e.msg})") from None
                where.append(f"{path.name}:{lineno}")
    out = [_record(r, w) if isinstance(r, dict) else _bad(w) for r, w in zip(records, where)]
    return out[:limit] if limit else out


def _bad(where: str):
    raise DatasetError(f"{where}: not a JSON object")


def format_prompt(tokenizer, question: str, chat: bool = False) -> str:
    """The text before the answer: ``question + "\\n\\nAnswer:"``, or a chat turn for instruct models."""
    if not chat:
        return question + ANSWER_PREFIX
    if not getattr(tokenizer, "chat_template", None):
        raise DatasetError("chat formatting was asked for but this tokenizer has no chat template", option="chat")
    return tokenizer.apply_chat_template([{"role": "user", "content": question}], tokenize=False,
                                         add_generation_prompt=True)


_OPTIONS = re.compile(r"\(A\)\s*(?P<a>.*?)\s*\n\s*\(B\)\s*(?P<b>.*?)\s*$", re.S)
_CHOICES = re.compile(r"\s*(Choices:)?\s*$")


def split_options(question: str) -> tuple[str, str, str] | None:
    """``(stem, text of (A), text of (B))`` of an A/B question, or None when it has no such options."""
    m = _OPTIONS.search(question)
    if not m or not m.group("a") or not m.group("b"):
        return None
    stem = _CHOICES.sub("", question[:m.start()]).rstrip()
    return stem, m.group("a").strip(), m.group("b").strip()


def option_texts(c: Contrast) -> tuple[str, str] | None:
    """(matching option's text, other option's text) when the answers are the letters of the prompt's "(A) …" /
    "(B) …" options (persona items: "Yes", "No"); None otherwise."""
    parts = split_options(c.prompt)
    pos, neg = c.positive.strip(), c.negative.strip()
    if parts is None or {pos, neg} != {"(A)", "(B)"}:
        return None
    _, a, b = parts
    return (a, b) if pos == "(A)" else (b, a)


def to_item(tokenizer, c: Contrast, chat: bool = False, where: str = "record") -> Item:
    """Tokenize ``prompt + answer`` both ways; the items ids stop before the first differing token."""
    prompt = format_prompt(tokenizer, c.prompt, chat)
    sep = "" if chat or c.positive.startswith((" ", "\n")) else " "
    a = tokenizer(prompt + sep + c.positive, add_special_tokens=not chat)["input_ids"]
    b = tokenizer(prompt + sep + c.negative, add_special_tokens=not chat)["input_ids"]
    k = next((i for i, (x, y) in enumerate(zip(a, b)) if x != y), None)
    if k is None:
        raise DatasetError(f"{where}: positive {c.positive!r} and negative {c.negative!r} tokenize to the same "
                           "leading tokens; the answers must differ in a single leading token")
    return Item(ids=a[:k], positive=[a[k]], negative=[b[k]], label=where, source=prompt_fingerprint(c.prompt),
                answers=option_texts(c) or ())


def prompt_fingerprint(prompt: str) -> str:
    """A short, stable id of a contrast prompt (the same question in two files gets the same id)."""
    return "prompt:" + hashlib.sha1(" ".join(prompt.split()).encode("utf-8")).hexdigest()[:16]


def once_per_prompt(items: list) -> list:
    """Each prompt's first item, in order: a set that repeats a prompt would weigh it twice in a vector or a mean,
    count it twice in a bootstrap over items, and could put it on both sides of a split."""
    seen, out = set(), []
    for it in items:
        if it.source not in seen:
            seen.add(it.source)
            out.append(it)
    return out


def contrast_items(tokenizer, contrasts: list[Contrast], chat: bool = False) -> list[Item]:
    return [to_item(tokenizer, c, chat, f"record {i}") for i, c in enumerate(contrasts)]


def word_ids(tokenizer, words: list[str]) -> list[int]:
    """First token of each word (with its leading space), deduplicated."""
    out = []
    for w in words:
        ids = tokenizer(w, add_special_tokens=False)["input_ids"]
        if ids and ids[0] not in out:
            out.append(ids[0])
    return out


def word_items(tokenizer, prompts: list[str], positive: list[str], negative: list[str],
               sources: list[str] | None = None) -> list[Item]:
    """Items that score sets of positive vs negative next words after each prompt."""
    pos, neg = word_ids(tokenizer, positive), word_ids(tokenizer, negative)
    if set(pos) & set(neg):
        raise DatasetError("positive and negative word lists share a leading token: "
                           f"{tokenizer.convert_ids_to_tokens(sorted(set(pos) & set(neg)))}")
    bos = [tokenizer.bos_token_id] if tokenizer.bos_token_id is not None and \
        tokenizer("a")["input_ids"][:1] == [tokenizer.bos_token_id] else []
    sources = sources or [""] * len(prompts)
    return [Item(ids=bos + tokenizer(p, add_special_tokens=False)["input_ids"], positive=pos, negative=neg,
                 label=p[:60], source=src) for p, src in zip(prompts, sources)]
