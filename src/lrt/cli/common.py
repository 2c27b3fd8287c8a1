"""What every command shares: silencing progress output, the output directory and its policy, the summary table.

The output policy, one for every command that writes a directory (:func:`writes_output`): a ``--out`` that already
holds files is refused before any work, unless ``--overwrite`` (the new run writes into a temporary directory
beside it, swapped in whole when the run succeeds: a failed run leaves the old outputs, and nothing of the old run
survives next to the new one) or ``--resume`` (the commands that can continue a run in place).
"""

from __future__ import annotations

import functools
import os
import secrets
import shutil
import sys
from dataclasses import dataclass, field
from pathlib import Path

from .. import distributed
from ..errors import ConfigError, CorpusError, OutputDirError
from ..io.files import ensure_writable, holds_files, replace_dir, write_config
from ..io.config import flatten
from ..report.tables import show


def close_bars() -> None:
    """Close every progress bar still open (a step that failed mid-way), so what is printed next starts on its own
    line and no bar is redrawn after it."""
    std = sys.modules.get("tqdm.std")
    if std is None:
        return
    classes, bars = [std.tqdm], set()
    while classes:                       # tqdm.auto's class keeps its own set of instances
        cls = classes.pop()
        classes += cls.__subclasses__()
        bars |= set(cls.__dict__.get("_instances", ()))
    for bar in bars:
        bar.close()


def print_error(message: str, every_rank: bool = False) -> None:
    """The one ``lrt: error: ...`` line of a refused command, on stderr, after closing any open progress bar. Under
    torchrun only rank 0 prints it (every rank refuses alike), unless ``every_rank`` (what only this rank saw)."""
    close_bars()
    if every_rank or distributed.launch_rank() == 0:
        print(f"lrt: error: {message}", file=sys.stderr, flush=True)


def quiet_progress(progress: bool) -> None:
    """With --no-progress, also silence transformers' own bars (weight loading, GGUF conversion)."""
    if not progress:
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


CORPUS_OPTIONS = ("corpus", "eval_corpus", "concept_corpus")
"""The options that name a corpus of documents with a 'text' field."""


def check_corpora(cfg) -> None:
    """Before any model loads: every corpus the command reads yields a first document with a 'text' (an empty file
    or records without 'text' are refused now, not after the models have loaded). Hugging Face names (``hf:``) are
    checked when read."""
    from ..data.corpus import iter_documents

    flat = flatten(cfg)
    for option in CORPUS_OPTIONS:
        spec = flat.get(option)
        if spec is None or str(spec).startswith("hf:"):
            continue
        try:
            next(iter_documents(spec), None)
        except CorpusError as e:
            raise CorpusError(str(e), option=option) from None


@dataclass
class OutputRun:
    """The option every command that writes an output directory shares (its ``*Run`` dataclass derives from it)."""

    overwrite: bool = field(default=False, kw_only=True)
    """If OUT already holds files, replace them: the new outputs are written beside it and swapped in whole at the
    end (a failed run leaves the old ones; nothing of the old run is kept)."""


def check_output(path: str | os.PathLike) -> None:
    """Before any work: the output directory can be created (or written), without creating it yet."""
    p = Path(path).absolute()
    probe = p
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir() or not os.access(probe, os.W_OK | os.X_OK):
        raise OutputDirError(f"output directory {str(path)!r} is not writable ({probe} is "
                             f"{'not a directory' if not probe.is_dir() else 'read-only'}); choose another",
                             option="out")


class Output:
    """A command's output directory under the output policy (module docstring), checked when made.

    ``path`` is where the outputs end up; ``target`` where the run writes them (``path`` itself, or with
    ``--overwrite`` of a directory that holds files a hidden sibling swapped in at the end), created by
    :meth:`open`. As a context manager it swaps ``target`` in when the block succeeds and removes it when it fails.
    ``resume`` is None for a command that cannot resume.
    """

    def __init__(self, path: str | os.PathLike, overwrite: bool = False, resume: bool | None = None):
        self.path = Path(path)
        check_output(self.path)
        if overwrite and resume:
            raise ConfigError("--overwrite replaces OUT and --resume continues the run in it; give one of them",
                              option="overwrite")
        if self.path.exists() and not self.path.is_dir():
            raise OutputDirError(f"output directory {str(path)!r} is a file; choose a directory", option="out")
        held = holds_files(self.path)
        if held and not overwrite and not resume:
            resumable = ", --resume to continue the run in it" if resume is not None else ""
            raise OutputDirError(f"output directory {str(path)!r} already holds files (of an earlier run); give "
                                 f"--overwrite to replace them{resumable}, or choose another output directory",
                                 option="out")
        self.replacing = held and bool(overwrite)
        cwd = Path.cwd().resolve()
        if self.replacing and self.path.resolve() in (cwd, *cwd.parents):
            raise OutputDirError(f"--overwrite would replace {str(path)!r}, which holds the current directory; run "
                                 "from elsewhere or choose another output directory", option="out")
        self.target = self.path
        if self.replacing:             # one name on every torchrun rank
            token = secrets.token_hex(4)
            token = distributed.broadcast(token) if distributed.launched() else token
            self.target = self.path.parent / f".{self.path.name}.lrt-new-{token}"

    def open(self) -> Path:
        """The directory to write into, created and checked writable."""
        return ensure_writable(self.target)

    def __enter__(self) -> "Output":
        return self

    def __exit__(self, kind, exc, tb) -> bool:
        if self.replacing and (not distributed.launched() or distributed.is_main()):    # torchrun: rank 0 writes
            if kind is None and self.target.exists():
                replace_dir(self.target, self.path)
            else:
                shutil.rmtree(self.target, ignore_errors=True)
        return False

    def __str__(self) -> str:
        return str(self.path)


def writes_output(run):
    """A command handler ``run(cfg, out)`` that writes the directory ``cfg.out``: ``out`` is its :class:`Output`,
    made (checked) before the handler runs; what the handler wrote is swapped in when it returns."""
    @functools.wraps(run)
    def handler(cfg) -> int:
        with Output(cfg.out, getattr(cfg, "overwrite", False), getattr(cfg, "resume", None)) as out:
            return run(cfg, out)
    return handler


def record(out: Path, cfg) -> None:
    """Write the run's fully resolved configuration next to its artifacts (``config.json``); ``--overwrite`` is
    left out (a re-run from that file must ask for it again)."""
    flat = flatten(cfg)
    flat.pop("overwrite", None)
    write_config(out, flat)


__all__ = ["Output", "OutputRun", "check_corpora", "check_output", "close_bars", "print_error", "quiet_progress",
           "record", "show", "writes_output"]
