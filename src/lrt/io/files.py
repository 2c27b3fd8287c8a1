"""Files written safely: atomic writes (a unique temporary file, fsync, then rename; removed on failure), JSON of
anything lrt produces, checksums, output directories checked before work starts, and the ``config.json`` of a
run (torch-free)."""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import json
import os
import secrets
import shutil
import tempfile
from pathlib import Path
from typing import Iterator

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


def holds_files(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` exists and holds anything (an earlier run's outputs)."""
    d = Path(directory)
    return d.is_dir() and any(d.iterdir())


def replace_dir(new: str | os.PathLike, path: str | os.PathLike) -> None:
    """Put the finished directory ``new`` in the place of ``path`` (whose earlier contents go, whole): the old
    directory is renamed aside, ``new`` renamed in, then the old one removed. ``path`` never holds a mix of the
    two; if the second rename fails the old directory is put back."""
    new, path = Path(new), Path(path)
    old = None
    if path.exists() or path.is_symlink():
        old = path.parent / f".{path.name}.lrt-old-{secrets.token_hex(4)}"
        os.replace(path, old)
    try:
        os.replace(new, path)
    except BaseException:
        if old is not None:
            os.replace(old, path)
        raise
    _fsync(path.parent)
    if old is not None:
        if old.is_dir() and not old.is_symlink():
            shutil.rmtree(old, ignore_errors=True)
        else:
            old.unlink(missing_ok=True)


def new_file_mode() -> int:
    """The permission bits of a file created now by ``open()``: 0o666 less the process umask."""
    mask = os.umask(0o022)      # the umask can only be read by setting it; put it straight back
    os.umask(mask)
    return 0o666 & ~mask


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """A unique temporary path next to ``path`` for the caller to write; when the block succeeds it gets a normal
    file's mode (:func:`new_file_mode`) and is renamed onto ``path``; when anything fails it is removed."""
    path = Path(path)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    os.close(fd)
    tmp = Path(name)
    try:
        yield tmp
        os.chmod(tmp, new_file_mode())
        _fsync(tmp)                  # the bytes are on disk before the name points at them
        os.replace(tmp, path)
        _fsync(path.parent)          # and the rename itself survives a crash
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:                  # a directory that cannot be opened (some platforms): best effort
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


def atomic_write_text(path: Path, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def atomic_write_bytes(path: Path, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


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
