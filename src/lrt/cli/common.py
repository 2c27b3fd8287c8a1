"""What every command shares: silencing progress output, the output directory, the summary table."""

from __future__ import annotations

import os
from pathlib import Path

from ..errors import OutputDirError
from ..io.files import ensure_writable, write_config
from ..io.config import flatten
from ..report.tables import show


def quiet_progress(progress: bool) -> None:
    """With --no-progress, also silence transformers' own bars (weight loading, GGUF conversion)."""
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def check_output(path: str) -> None:
    """Before any work: the output directory can be created (or written), without creating it yet."""
    p = Path(path).absolute()
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputDirError(f"output directory {str(path)!r} is not writable ({probe} is "
                             f"{'not a directory' if not probe.is_dir() else 'read-only'}); choose another",
                             option="out")


def output_dir(path: str) -> Path:
    """The command's output directory, created (on success, after the work) and checked writable."""
    return ensure_writable(path)


def record(out: Path, cfg) -> None:
    """Write the run's fully resolved configuration next to its artifacts (``config.json``)."""
    write_config(out, flatten(cfg))


__all__ = ["check_output", "output_dir", "quiet_progress", "record", "show"]
