"""What makes two model names the same model: the same name, the same file or directory however it is written
(``x.gguf``, ``./x.gguf``, ``/abs/x.gguf``, a symlink), or the same content (a cheap fingerprint recorded when the
model is loaded and kept in the artifacts made from it, so a copy of the file counts too)."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from ..zoo import registry as zoo_registry

WEIGHT_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".pth")
"""The files of a model directory that the fingerprint reads (with ``config.json``)."""

EDGE = 1 << 20
"""Bytes read at each end of a file: the fingerprint costs two MiB a file, whatever the model's size."""


def local_path(name: str | os.PathLike) -> Path | None:
    """The resolved local file or directory a model name stands for (zoo names included), else None (a hub id)."""
    name = str(name)
    if name.startswith("zoo-") and "/" not in name:
        try:
            return Path(zoo_registry.path(name)).resolve()
        except Exception:           # noqa: BLE001 - an unknown zoo name: not a local model
            return None
    try:
        p = Path(name).expanduser()
    except RuntimeError:            # ~user of no such user
        return None
    return p.resolve() if p.exists() else None


def _file_digest(h, path: Path) -> None:
    size = path.stat().st_size
    h.update(str(size).encode())
    with open(path, "rb") as f:
        h.update(f.read(EDGE))
        if size > EDGE:
            f.seek(max(EDGE, size - EDGE))
            h.update(f.read(EDGE))


def fingerprint(name: str | os.PathLike) -> str | None:
    """A content fingerprint of a local model (None for a hub id): size and sha256 of the first and last MiB of a
    ``.gguf`` file, or of each weight file and ``config.json`` of a directory (in name order)."""
    p = local_path(name)
    if p is None:
        return None
    files = [p] if p.is_file() else sorted(f for f in p.iterdir()
                                           if f.is_file() and (f.suffix in WEIGHT_SUFFIXES or f.name == "config.json"))
    if not files:
        return None
    h = hashlib.sha256()
    try:
        for f in files:
            if p.is_dir():
                h.update(f.name.encode())
            _file_digest(h, f)
    except OSError:
        return None
    return h.hexdigest()[:32]


def same_model(a: str, b: str, fingerprint_a: str | None = None, fingerprint_b: str | None = None) -> bool:
    """Whether model names ``a`` and ``b`` (with the fingerprints recorded for them, if any) are one model."""
    if str(a) == str(b):
        return True
    pa, pb = local_path(a), local_path(b)
    if pa is not None and pa == pb:
        return True
    fa = fingerprint_a or (fingerprint(a) if pa is not None else None)
    fb = fingerprint_b or (fingerprint(b) if pb is not None else None)
    return fa is not None and fa == fb
