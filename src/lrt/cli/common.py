"""What every command shares: silencing progress output, the output directory, the summary table."""

from __future__ import annotations

from pathlib import Path

from ..io.files import ensure_writable, write_config
from ..io.config import flatten
from ..report.tables import show


def quiet_progress(progress: bool) -> None:
    """With --no-progress, also silence transformers' own bars (weight loading, GGUF conversion)."""
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def output_dir(path: str) -> Path:
    """The command's output directory, created and checked writable."""
    return ensure_writable(path)


def record(out: Path, cfg) -> None:
    """Write the run's fully resolved configuration next to its artifacts (``config.json``)."""
    write_config(out, flatten(cfg))


__all__ = ["output_dir", "quiet_progress", "record", "show"]
