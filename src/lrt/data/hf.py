"""Hugging Face data sets by name (the optional ``datasets`` package): ``hf:OWNER/NAME[:CONFIG][@SPLIT]``.

Corpora need a ``text`` column; contrast and test sets the columns of one of the A/B layouts
:mod:`lrt.data.contrasts` reads (``question`` / ``answer_matching_behavior`` / ``answer_not_matching_behavior``,
``prompt`` / ``positive`` / ``negative``, ``prompt`` / ``correct`` / ``incorrect``). With ``HF_HUB_OFFLINE=1`` (or
no network) a data set loaded once before is read from the local cache.
"""

from __future__ import annotations

from typing import Iterator

from ..errors import CorpusError

PREFIX = "hf:"


def parse(spec: str) -> tuple[str, str | None, str]:
    """``hf:owner/name:config@split`` → (``owner/name``, ``config`` or None, ``split``, default ``train``)."""
    s = spec[len(PREFIX):] if spec.startswith(PREFIX) else spec
    s, _, split = s.partition("@")
    name, _, config = s.partition(":")
    return name, config or None, split or "train"


def rows(spec: str, streaming: bool = True) -> Iterator[dict]:
    """The rows of the data set ``spec`` (streamed when possible; a cached copy when offline)."""
    try:
        import datasets  # optional
    except ImportError:
        raise CorpusError(f"{spec!r} is a Hugging Face data set; install the datasets extra (pip install "
                          "'lrt[datasets]') or pass a local file") from None
    name, config, split = parse(spec)
    try:
        ds = datasets.load_dataset(name, config, split=split, streaming=streaming)
        first = iter(ds)
        row = next(first, None)
    except Exception as e:  # noqa: BLE001 - datasets raises many types (offline, missing, auth)
        if streaming:            # a cached copy cannot always be streamed offline: read it whole
            yield from rows(spec, streaming=False)
            return
        raise CorpusError(f"could not open the Hugging Face data set {name!r} (config {config}, split {split}): "
                          f"{type(e).__name__}: {e}") from None
    if row is not None:
        yield dict(row)
        yield from (dict(r) for r in first)
