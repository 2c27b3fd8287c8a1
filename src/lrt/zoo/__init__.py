"""The embedded model family. ``lrt.zoo`` itself is the registry (a leaf: names → directories, shipped data);
``lrt.zoo.training`` (the trainer and its model cards) sits above the whole pipeline, which it uses to measure."""

from .registry import SIZES, available, data_file, heldout_text, path, review_sample, root

__all__ = ["SIZES", "available", "data_file", "heldout_text", "path", "review_sample", "root"]
