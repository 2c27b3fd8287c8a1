"""Models: load any causal LM, the layer convention, its decoder blocks, forward hooks, the tokenizer check.

Names load lazily: :mod:`lrt.models.config` and :mod:`lrt.models.layers` do not import torch.
"""

from .._lazy import lazy_exports

_EXPORTS = {"BLOCK_PATHS": "lrt.models.blocks", "find_blocks": "lrt.models.blocks",
            "DTYPES": "lrt.models.load", "LoadedModel": "lrt.models.load", "load_model": "lrt.models.load",
            **{n: "lrt.models.layers" for n in ("EMBED", "default_layers", "layer_index", "layer_name",
                                                 "parse_layer")}}
__getattr__ = lazy_exports(__name__, _EXPORTS)
__all__ = sorted(_EXPORTS)
