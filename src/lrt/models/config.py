"""Which models to load, and how (torch-free, so the CLI can build its flags without importing torch)."""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import ConfigError
from .layers import LayerSpec, parse_layer

DTYPE_NAMES = ("float32", "fp32", "bfloat16", "bf16", "float16", "fp16", "auto")   # lrt.models.load.DTYPES + auto


@dataclass
class LoadConfig:
    """How weights are loaded: dtype and device."""

    dtype: str = "float32"
    """Weights dtype: float32 | bfloat16 | float16 | auto (the checkpoint's own)."""
    device: str = "cpu"
    """Torch device: cpu, cuda, cuda:1, mps, ..."""
    device_map: str | None = None
    """Spread a model too large for one device over several (accelerate): auto | balanced | sequential, or a JSON
    file of {module name: device} ("disk" offloads); --device is then the device of the inputs."""

    def load(self, name: str):
        """Load model ``name`` this way (:func:`lrt.models.load.load_model`)."""
        from .load import load_model

        return load_model(name, self.dtype, self.device, device_map=self.device_map)

    def __post_init__(self):
        if self.dtype not in DTYPE_NAMES:
            raise ConfigError(f"unknown dtype {self.dtype!r}; use one of {', '.join(DTYPE_NAMES)}", option="dtype")


@dataclass
class PairConfig:
    """A small (source) and a large (target) model of one family, and the layers the map joins."""

    source: str = "zoo-xs"
    """Small model: hub id (org/name), local directory, .gguf file or zoo name (zoo-xs, zoo-s, zoo-m)."""
    target: str = "zoo-m"
    """Large model, with the same tokenizer."""
    source_layer: LayerSpec | None = None
    """Source layer (output of that block; 'embed' allowed). Default: the middle block."""
    target_layer: LayerSpec | None = None
    """Target layer. Default: the block at the source layer's relative depth."""

    def __post_init__(self):
        self.source_layer = parse_layer(self.source_layer)
        self.target_layer = parse_layer(self.target_layer)

    def load(self, how: LoadConfig | None = None):
        """Load both models; returns ``(source, target)`` (:func:`lrt.maps.fit.fit_map` checks their tokenizers)."""
        how = how or LoadConfig()
        return how.load(self.source), how.load(self.target)

    def layers(self, src, tgt) -> tuple[LayerSpec, LayerSpec]:
        """The layer pair, defaults resolved against the loaded models."""
        from .layers import default_layers

        return default_layers(src.n_layers, tgt.n_layers, self.source_layer, self.target_layer)


@dataclass
class ModelConfig:
    """One model and one of its layers."""

    model: str
    """Model: hub id (org/name), local directory, .gguf file or zoo name."""
    layer: LayerSpec
    """Layer (output of that block, or 'embed')."""

    def __post_init__(self):
        self.layer = parse_layer(self.layer)
