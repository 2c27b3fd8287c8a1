"""Load any causal LM — hub id, local directory, ``.gguf`` file or zoo name — with its tokenizer and blocks."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from ..zoo import registry as zoo_registry
from .blocks import find_blocks
from .layers import LayerSpec, layer_index

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

    def layer_index(self, layer: LayerSpec) -> int:
        """Validate a layer spec and return its index; ``"embed"`` is -1."""
        return layer_index(layer, self.n_layers, self.name)


def _resolve(name_or_path: str) -> tuple[str, dict]:
    """Map zoo names and GGUF files to a ``from_pretrained`` target and extra kwargs."""
    if name_or_path.startswith("zoo-"):
        return str(zoo_registry.path(name_or_path)), {}
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
            raise ModelLoadError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(DTYPES)}", option="dtype")
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
