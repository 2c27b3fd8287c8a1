"""Files written safely: atomic writes (temporary file, then rename), JSON of anything lrt produces, checksums,
output directories checked before work starts, and the ``config.json`` of a run (torch-free)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import tempfile
from pathlib import Path

from ..errors import OutputDirError


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def ensure_writable(directory: str | os.PathLike) -> Path:
    """Create ``directory`` if needed and check that files can be written there; fail early and clearly."""
    d = Path(directory)
    try:
        d.mkdir(parents=True, exist_ok=True)
        with tempfile.NamedTemporaryFile(dir=d, prefix=".lrt-write-test-"):
            pass
    except OSError as e:
        raise OutputDirError(f"output directory {str(d)!r} is not writable ({e.strerror}); choose another output directory", option="out") from None
    return d


def atomic_write_text(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(text, encoding="utf-8")
    os.replace(tmp, path)


def atomic_write_bytes(path: Path, data: bytes) -> None:
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)


def to_json(obj) -> str:
    """JSON text of ``obj``, with tensors, paths and numpy scalars converted (the one encoder of every file)."""
    return json.dumps(obj, indent=2, default=_json_default)


def write_config(directory: str | os.PathLike, config: dict) -> Path:
    """Write the fully resolved configuration of the run that filled ``directory`` as ``config.json``.

    Its keys are the command's option names, so ``lrt COMMAND --config DIR/config.json`` re-runs it exactly.
    """
    path = Path(directory) / "config.json"
    atomic_write_text(path, to_json(config))
    return path


def _json_default(o):
    if hasattr(o, "tolist"):          # tensors, numpy arrays and scalars
        return o.tolist()
    if dataclasses.is_dataclass(o) and not isinstance(o, type):
        return dataclasses.asdict(o)
    if isinstance(o, Path):
        return str(o)
    if hasattr(o, "item"):
        return o.item()
    raise TypeError(f"not JSON serialisable: {type(o).__name__}")
