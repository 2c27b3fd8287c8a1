"""Exception classes. Every message says what was wrong and what to do about it.

The CLI catches :class:`LRTError`, prints its message (and the flag of its ``option``) and exits with status 2.
"""


class LRTError(Exception):
    """Base class of every error `lrt` raises on purpose.

    ``option`` names the configuration field the error is about (``"tokens"``); library messages state the
    fact, and the CLI adds the flag that sets it (``--tokens``).
    """

    def __init__(self, message: str = "", *, option: str | None = None):
        super().__init__(message)
        self.option = option


class ModelLoadError(LRTError):
    """A model name or path could not be resolved or loaded."""


class ArchitectureError(LRTError):
    """The decoder-block list of a model could not be found."""


class LayerRangeError(LRTError):
    """A layer index is outside the model's range."""


class TokenizerMismatchError(LRTError):
    """Two models do not tokenize identically."""


class CorpusError(LRTError):
    """A corpus is missing, empty, or has no `text` field."""


class NonFiniteActivationError(LRTError):
    """A model produced NaN or Inf hidden states."""


class ArtifactError(LRTError):
    """An artifact file is missing, tampered with, or of an unknown format."""


class DimensionMismatchError(LRTError):
    """An artifact's dimensions do not match the model it is applied to."""


class OutputDirError(LRTError):
    """An output directory cannot be written, or already holds results."""


class DatasetError(LRTError):
    """A contrastive or evaluation data set is malformed."""


class ConfigError(LRTError):
    """An option or combination of options is invalid."""


class ResourceError(LRTError):
    """A job would need more memory (or another resource) than is available; refused before it starts."""


class StoreError(LRTError):
    """An activation store (or checkpoint) that is missing, truncated, corrupted (sha256 mismatch) or does not hold
    what was asked for."""


class DistributedError(LRTError):
    """A torch.distributed collective failed: another rank died, or stopped answering within the timeout."""
