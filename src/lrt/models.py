"""Model access: load any causal LM (hub id, local dir, GGUF file, embedded zoo name) and find its blocks.

Layer convention: layer ``L`` is the output of decoder block ``L`` (the residual stream after it;
``output_hidden_states[L+1]`` except for the last block, where Hugging Face applies the final norm;
TransformerLens ``blocks.L.hook_resid_post``). ``"embed"`` is the input to block 0.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from .errors import ArchitectureError, LayerRangeError, ModelLoadError

EMBED = "embed"

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

DTYPES = {"float32": torch.float32, "fp32": torch.float32, "bfloat16": torch.bfloat16, "bf16": torch.bfloat16,
          "float16": torch.float16, "fp16": torch.float16}


@dataclass
class LoadedModel:
    """A causal LM with its tokenizer and the list of its decoder blocks."""

    model: nn.Module
    tokenizer: object
    name: str
    blocks: nn.ModuleList

    @property
    def n_layers(self) -> int:
        return len(self.blocks)

    @property
    def d_model(self) -> int:
        conf = self.model.config
        conf = conf.get_text_config() if hasattr(conf, "get_text_config") else conf
        return int(getattr(conf, "hidden_size", None) or getattr(conf, "n_embd"))

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    def layer_index(self, layer: int | str) -> int:
        """Validate a layer spec and return its index; ``"embed"`` is -1."""
        if isinstance(layer, str):
            if layer == EMBED:
                return -1
            try:
                layer = int(layer)
            except ValueError:
                raise LayerRangeError(f"layer {layer!r} of {self.name} is neither an integer nor 'embed'") from None
        if not 0 <= layer < self.n_layers:
            raise LayerRangeError(f"layer {layer} is out of range for {self.name}: valid layers are 0..{self.n_layers - 1}"
                                  f" (or 'embed'); it has {self.n_layers} decoder blocks")
        return layer


def default_layers(source, target, source_layer=None, target_layer=None) -> tuple[int | str, int | str]:
    """The source's middle block ((n − 1) // 2), and the target block at the same relative depth, unless given."""
    if source_layer is None:
        source_layer = (source.n_layers - 1) // 2
    if target_layer is None:
        rel = (source.layer_index(source_layer) + 1) / source.n_layers
        target_layer = max(0, round(rel * target.n_layers) - 1)
    return source_layer, target_layer


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


def _resolve(name_or_path: str) -> tuple[str, dict]:
    """Map zoo names and GGUF files to a ``from_pretrained`` target and extra kwargs."""
    if name_or_path.startswith("zoo-"):
        from . import zoo

        return str(zoo.path(name_or_path)), {}
    p = Path(name_or_path)
    if p.suffix == ".gguf":
        if not p.is_file():
            raise ModelLoadError(f"GGUF file {name_or_path!r} does not exist")
        return str(p.parent), {"gguf_file": p.name}
    return name_or_path, {}


def load_model(name_or_path: str | os.PathLike, dtype: str | torch.dtype = "float32", device: str = "cpu",
               tokenizer: bool = True) -> LoadedModel:
    """Load a causal LM (hub id, local directory, ``.gguf`` file, or zoo name such as ``zoo-s``), in eval mode."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    name = str(name_or_path)
    target, extra = _resolve(name)
    if isinstance(dtype, str):
        if dtype != "auto" and dtype not in DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(DTYPES)}")
        dtype = dtype if dtype == "auto" else DTYPES[dtype]
    looks_local = os.sep in name or name.startswith(".") or Path(target).exists()
    if looks_local and not Path(target).exists():
        raise ModelLoadError(f"model path {name!r} does not exist; pass a local model directory, a .gguf file, "
                             "a hub id (e.g. EleutherAI/pythia-70m-deduped) or a zoo name (zoo-xs, zoo-s, zoo-m)")
    try:
        model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype, **extra)
        tok = AutoTokenizer.from_pretrained(target, **extra) if tokenizer else None
    except (OSError, ValueError) as e:
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ("install the GGUF extra: pip install 'lrt[gguf]'" if extra else
                "check the name, or that the hub is reachable (HF_HUB_OFFLINE=1 uses only the local cache)")
        raise ModelLoadError(f"could not load model {name!r}: {first.rstrip('.')}; {hint}") from None
    model.to(device).eval()
    if tok is not None and tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(model=model, tokenizer=tok, name=name, blocks=find_blocks(model))
