"""Artifacts on disk: ``<stem>.safetensors`` + ``<stem>.json`` (kind, format version, sha256 of the tensors).

Writes go to unique temporary files that are renamed into place (with the mode of any new file under the
umask), so a failure never leaves half an artifact or a temporary file.
Loading verifies the checksum and never unpickles anything.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ArtifactError
from .files import atomic_path, atomic_write_text, ensure_writable, sha256_file, to_json

FORMAT_VERSION = 1


def save_artifact(directory: str | os.PathLike, stem: str, kind: str, tensors: dict[str, torch.Tensor],
                  meta: dict) -> Path:
    d = ensure_writable(directory)
    tpath, jpath = d / f"{stem}.safetensors", d / f"{stem}.json"
    with atomic_path(tpath) as ttmp:        # written 0600 by safetensors; atomic_path gives it a normal mode
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, ttmp)
        record = {"kind": kind, "format_version": FORMAT_VERSION, **meta, "tensor_file": tpath.name,
                  "sha256": sha256_file(ttmp)}
    atomic_write_text(jpath, to_json(record))
    return d


def load_artifact(directory: str | os.PathLike, stem: str, kind: str) -> tuple[dict[str, torch.Tensor], dict]:
    d = Path(directory)
    jpath, tpath = d / f"{stem}.json", d / f"{stem}.safetensors"
    if not jpath.exists() or not tpath.exists():
        raise ArtifactError(f"{d} does not hold a {kind} artifact ({stem}.json + {stem}.safetensors)")
    try:
        meta = json.loads(jpath.read_text(encoding="utf-8"))
    except json.JSONDecodeError as e:
        raise ArtifactError(f"{jpath} is not valid JSON ({e.msg}); the artifact is damaged") from None
    if meta.get("kind") != kind:
        raise ArtifactError(f"{jpath} holds a {meta.get('kind')!r} artifact, not a {kind!r}")
    if meta.get("format_version", 0) > FORMAT_VERSION:
        raise ArtifactError(f"{jpath} has format version {meta['format_version']}, newer than this lrt "
                            f"({FORMAT_VERSION}); upgrade lrt")
    digest = sha256_file(tpath)
    if digest != meta.get("sha256"):
        raise ArtifactError(f"{tpath} does not match the sha256 recorded in {jpath.name} "
                            f"(expected {str(meta.get('sha256'))[:12]}…, found {digest[:12]}…): the tensor file was "
                            "modified or damaged; re-create the artifact")
    return load_file(tpath), meta


BOOKKEEPING = ("kind", "format_version", "tensor_file", "sha256")


def split_meta(meta: dict, core: tuple[str, ...], derived: tuple[str, ...] = ()) -> tuple[dict, dict]:
    """Split a loaded artifact's JSON into its core fields and the rest (bookkeeping and derived keys dropped)."""
    rest = {k: v for k, v in meta.items() if k not in BOOKKEEPING + derived + core}
    return {k: meta[k] for k in core}, rest
