"""Find the decoder-block list of any causal LM (the modules whose outputs are the layers)."""

from __future__ import annotations

from torch import nn

from ..errors import ArchitectureError

# Attribute paths of the decoder-block list, by architecture family.
BLOCK_PATHS = (
    "model.layers",            # Llama, Mistral, Qwen2, Gemma, Gemma2, Phi-3, ...
    "transformer.h",           # GPT-2, GPT-J, Falcon, Bloom
    "gpt_neox.layers",         # GPT-NeoX, Pythia
    "model.decoder.layers",    # OPT
    "model.language_model.layers",  # multimodal wrappers (Gemma3, ...)
    "transformer.layers",
    "layers",
)


def find_blocks(model: nn.Module) -> nn.ModuleList:
    """The decoder-block ``ModuleList`` of ``model`` (see :data:`BLOCK_PATHS`), or the one of length n_layers."""
    for path in BLOCK_PATHS:
        obj = model
        for part in path.split("."):
            obj = getattr(obj, part, None)
            if obj is None:
                break
        if isinstance(obj, nn.ModuleList) and len(obj) > 0:
            return obj
    conf = model.config.get_text_config() if hasattr(model.config, "get_text_config") else model.config
    n = getattr(conf, "num_hidden_layers", None) or getattr(conf, "n_layer", None)
    lists = [m for m in model.modules() if isinstance(m, nn.ModuleList) and len(m) == n]
    if n and len(lists) >= 1:
        return lists[0]
    arch = ",".join(getattr(model.config, "architectures", None) or [type(model).__name__])
    raise ArchitectureError(f"cannot find the decoder blocks of architecture {arch}: none of {', '.join(BLOCK_PATHS)} "
                            f"exists and no ModuleList has num_hidden_layers={n} entries; please open an issue "
                            "naming this architecture")
