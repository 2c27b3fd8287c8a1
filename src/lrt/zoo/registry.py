"""The embedded model family: three Llama decoders of one tokenizer, trained on ../shared natural text.

``lrt.zoo.path("s")`` (or ``"zoo-s"``) is a model's directory; ``zoo-xs``, ``zoo-s``, ``zoo-m`` work wherever a
model name is accepted.
"""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path

from ..errors import ModelLoadError

SIZES = ("xs", "s", "m")


def root() -> Path:
    return Path(str(files("lrt.zoo") / "models"))


def path(name: str) -> Path:
    short = name[4:] if name.startswith("zoo-") else name
    d = root() / f"zoo-{short}"
    if short not in SIZES or not (d / "config.json").exists():
        raise ModelLoadError(f"zoo model {name!r} is not shipped with this installation; "
                             f"available: {', '.join('zoo-' + n for n in available()) or 'none'}")
    return d


def available() -> list[str]:
    return [n for n in SIZES if (root() / f"zoo-{n}" / "config.json").exists()]


def heldout_text() -> Path:
    """The family's held-out documents (5% of ../shared natural text by doc-id hash), shipped as JSONL.gz."""
    return data_file("heldout.jsonl.gz")


def review_sample() -> Path:
    """400 movie-review endings (200 positive, 200 negative) from the train split, for concept vectors."""
    return data_file("reviews-train-sample.jsonl.gz")


def data_file(name: str) -> Path:
    """A data file shipped with the family (``heldout.jsonl.gz``, ``reviews-train-sample.jsonl.gz``)."""
    return Path(str(files("lrt.zoo") / "data" / name))
