"""Data by name: the sets that ship inside the package, and where a name or a path points.

Every option that takes a data file also takes a name (``lrt data list`` shows them all):

- ``caa:BEHAVIOUR`` — the CAA A/B sets of seven behaviours. Where a *contrast* is expected (``--contrast``,
  ``--contrast-sets``) it is the generate set, where a *test* set is expected (``--test``) the A/B test set;
  ``caa:BEHAVIOUR/generate``, ``/test``, ``/open-ended`` name a part explicitly;
- ``caa-yesno:``, ``caa-persona:``, ``caa-text:`` ``BEHAVIOUR`` — the same records in Yes/No, persona-style A/B and
  free-text form (:mod:`lrt.data.formats`);
- ``mmlu``, ``truthfulqa`` (A/B, correct vs incorrect), ``mmlu-text``, ``truthfulqa-text`` (free text);
- ``lrt:text`` (a stratified sample of lrt's development corpus, with source, genre and sentiment labels),
  ``lrt:heldout`` (the embedded family's held-out text), ``lrt:reviews`` (400 labelled review endings).

Anything else is a path (or, for corpora, a Hugging Face data set name). ``index.json`` beside the files records
each set's sha256, licence, source and *family* (the behaviour it belongs to: what a leave-one-out excludes).
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from importlib.resources import files
from pathlib import Path

from ..errors import ConfigError, DatasetError

ROLE_PART = {"contrast": "generate", "test": "test", "prompts": "open-ended"}
PREFIXES = ("caa:", "caa-yesno:", "caa-persona:", "caa-text:", "lrt:")


def root() -> Path:
    return Path(str(files("lrt.data") / "builtin"))


@functools.lru_cache(maxsize=1)
def catalogue() -> dict[str, dict]:
    """Every shipped set by name: ``{file (absolute), kind, records, family, sha256, licence, source, ...}``."""
    index = json.loads((root() / "index.json").read_text(encoding="utf-8"))["sets"]
    out = {name: {**rec, "file": str(root() / rec["file"])} for name, rec in index.items()}
    from ..zoo import registry as zoo

    for name, path, what in (("lrt:heldout", zoo.heldout_text(), "the embedded family's held-out documents (5% "
                              "of its training corpus by document hash)"),
                             ("lrt:reviews", zoo.review_sample(), "400 movie-review endings (200 pos, 200 neg) of "
                              "the train split, for the sentiment concept")):
        out[name] = {"file": str(path), "kind": "corpus", "family": name, "records": None, "sha256": None,
                     "licence": index["lrt:text"]["licence"], "source": what}
    return out


def is_name(spec: str | os.PathLike | None) -> bool:
    """Whether ``spec`` is written as a data set name (not a path)."""
    s = str(spec or "")
    if s.startswith("hf:"):
        return False
    return s.startswith(PREFIXES) or s in catalogue() or s.split("/")[0] in catalogue()


def lookup(spec: str, role: str | None = None) -> str | None:
    """The catalogue name ``spec`` stands for in ``role`` (``contrast``, ``test``, ``prompts``, ``corpus``), or
    None when ``spec`` is not a name. An unknown name, or one whose role is ambiguous, is a :class:`DatasetError`."""
    s = str(spec)
    cat = catalogue()
    if s in cat:
        return s
    if not is_name(s):
        return None
    if role in ROLE_PART and f"{s}/{ROLE_PART[role]}" in cat:
        return f"{s}/{ROLE_PART[role]}"
    parts = sorted(n for n in cat if n.startswith(s + "/"))
    if parts:
        raise DatasetError(f"data set {s!r} has several parts ({', '.join(parts)}); name one")
    near = sorted(n.split("/")[0] for n in cat if n.split(":")[0] == s.split(":")[0])
    hint = f" ({s.split(':')[0]}: {', '.join(sorted(set(near)))})" if near else ""
    raise DatasetError(f"no data set named {s!r}{hint}; `lrt data list` shows every name")


def resolve(spec: str | os.PathLike, role: str | None = None) -> Path:
    """The file a name stands for, or ``spec`` itself as a path."""
    name = lookup(str(spec), role)
    return Path(catalogue()[name]["file"]) if name else Path(spec)


def check(spec: str | os.PathLike | None, role: str | None, option: str) -> None:
    """Refuse, before anything runs, an unknown name or a file that does not exist (a :class:`ConfigError` naming
    ``option``). Corpora may also be Hugging Face data set names (checked when read)."""
    if spec is None or str(spec).startswith("hf:"):      # Hugging Face names: checked when read
        return
    try:
        name = lookup(str(spec), role)
    except DatasetError as e:
        raise ConfigError(str(e), option=option) from None
    if name:
        return
    p = Path(spec)
    looks_like_path = os.sep in str(spec) or p.suffix in (".json", ".jsonl", ".gz", ".txt")
    if not p.exists() and (role != "corpus" or looks_like_path):
        raise ConfigError(f"data file {str(spec)!r} does not exist; give a file, or a data set name "
                          "(`lrt data list`)", option=option)


def sha256_file(path: str | os.PathLike) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def describe(spec: str | os.PathLike, role: str | None = None) -> dict:
    """What a results file records of a data set: its name (if any), file, sha256, licence."""
    if str(spec).startswith("hf:"):
        return {"name": str(spec), "file": None, "sha256": None, "family": None, "licence": "see the data set's card"}
    name = lookup(str(spec), role)
    path = resolve(spec, role)
    rec = catalogue()[name] if name else {}
    sha = rec.get("sha256") or (sha256_file(path) if path.is_file() else None)
    return {"name": name, "file": str(path), "sha256": sha,
            "family": rec.get("family") if name else family_of(path), "licence": rec.get("licence")}


def family_of(spec: str | os.PathLike, role: str | None = None) -> str | None:
    """The behaviour family of a set: by name, or, for a file, by its content (sha256 equal to a shipped file's).
    None for a file lrt does not ship."""
    if str(spec).startswith("hf:"):
        return None
    name = lookup(str(spec), role)
    if name:
        return catalogue()[name]["family"]
    path = Path(spec)
    if not path.is_file():
        return None
    sha = sha256_file(path)
    for rec in catalogue().values():
        if sha in (rec.get("sha256"), rec.get("content_sha256")):
            return rec["family"]
    return None
