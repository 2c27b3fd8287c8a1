"""Load any causal LM — hub id, local directory, ``.gguf`` file or zoo name — with its tokenizer and blocks."""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from ..errors import ModelLoadError
from ..zoo import registry as zoo_registry
from .blocks import find_blocks
from .identity import fingerprint
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
    fingerprint: str | None = None
    """A content fingerprint of a local model's files (:func:`lrt.models.identity.fingerprint`), recorded in what is
    made from it, so a path written another way, or a copy, is still recognised; None for a hub id."""

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


HUB_ID = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.-]*(/[A-Za-z0-9_][A-Za-z0-9_.-]*)?")
"""A name shaped like a hub id: ``name`` or ``org/name`` (no leading ``/``, ``.``, ``~``; at most one ``/``)."""

KINDS = "a local model directory, a .gguf file, a hub id (org/name) or a zoo name (zoo-xs, zoo-s, zoo-m)"


def _resolve(name: str) -> tuple[str, dict, bool]:
    """``(from_pretrained target, extra kwargs, is a hub id)`` of a model name; raises for a missing path.

    Zoo names first; then an existing path is local (a ``.gguf`` file or a directory); a ``.gguf`` name that is
    not a file is an error; a hub-id-shaped name goes to the hub (or its local cache); anything else is a path
    that does not exist.
    """
    if name.startswith("zoo-") and "/" not in name:
        return str(zoo_registry.path(name)), {}, False
    try:
        p = Path(name).expanduser()
    except RuntimeError:                        # ~user of no such user
        p = Path(name)
    if p.suffix == ".gguf" and p.is_file():
        return str(p.parent), {"gguf_file": p.name}, False
    if p.exists():
        return str(p), {}, False
    if p.suffix == ".gguf":
        raise ModelLoadError(f"GGUF file {name!r} does not exist")
    if HUB_ID.fullmatch(name) and ".." not in name:
        return name, {}, True
    raise ModelLoadError(f"model path {name!r} does not exist; pass {KINDS}")


def check_device(device: str) -> torch.device:
    """The torch device named ``device``, if this machine has it."""
    try:
        dev = torch.device(device)
    except (RuntimeError, TypeError, ValueError):
        raise ModelLoadError(f"{device!r} is not a torch device; use cpu, cuda, cuda:N or mps",
                             option="device") from None
    if dev.type == "cuda":
        if torch.version.cuda is None and getattr(torch.version, "hip", None) is None:
            raise ModelLoadError(f"device {device!r} is not available: this torch ({torch.__version__}) is built "
                                 "without CUDA; use cpu, or install a CUDA build of torch", option="device")
        count = torch.cuda.device_count() if torch.cuda.is_available() else 0
        if count == 0:
            raise ModelLoadError(f"device {device!r} is not available: torch sees no CUDA GPU on this machine; "
                                 "use cpu", option="device")
        if dev.index is not None and dev.index >= count:
            raise ModelLoadError(f"device {device!r} is not available: this machine has {count} CUDA GPU(s) "
                                 f"(cuda:0..cuda:{count - 1})", option="device")
    elif dev.type == "mps":
        if not (getattr(torch.backends, "mps", None) and torch.backends.mps.is_available()):
            raise ModelLoadError(f"device {device!r} is not available: torch has no MPS (Apple GPU) backend on "
                                 "this machine; use cpu", option="device")
    elif dev.type != "cpu":
        backend = getattr(torch, dev.type, None)
        if backend is None or not getattr(backend, "is_available", lambda: False)():
            raise ModelLoadError(f"device {device!r} is not available on this machine; use cpu", option="device")
    return dev


def _not_on_hub(e: BaseException) -> bool:
    """Whether a ``from_pretrained`` failure means the repository is neither on the hub nor in the local cache."""
    from huggingface_hub.errors import GatedRepoError, LocalEntryNotFoundError, RepositoryNotFoundError

    while e is not None:
        if isinstance(e, (RepositoryNotFoundError, LocalEntryNotFoundError)) and not isinstance(e, GatedRepoError):
            return True
        e = e.__cause__ or e.__context__
    return False


def _hub_miss(name: str) -> ModelLoadError:
    from huggingface_hub import constants

    offline = os.environ.get("HF_HUB_OFFLINE", "unset")
    todo = ("download it into that cache first (with network access and HF_HUB_OFFLINE unset), or "
            if constants.HF_HUB_OFFLINE else "check the id and that the hub is reachable, or ")
    return ModelLoadError(f"model {name!r} is neither a local directory (no {name!r} under {Path.cwd()}) nor a "
                          f"model found on the Hugging Face hub or in the local cache at {constants.HF_HUB_CACHE} "
                          f"(HF_HUB_OFFLINE={offline}); {todo}pass {KINDS}")


def load_model(name_or_path: str | os.PathLike, dtype: str | torch.dtype = "float32", device: str = "cpu",
               tokenizer: bool = True, device_map: str | dict | None = None) -> LoadedModel:
    """Load a causal LM (hub id, local directory, ``.gguf`` file, or zoo name such as ``zoo-s``), in eval mode.
    ``device_map`` (accelerate: ``auto``, ``balanced``, ``sequential``, a JSON file or a dict of module → device,
    ``"disk"`` offloading) spreads a model too large for one device; the layer hooks and early stop work the same."""
    name = str(name_or_path)
    if isinstance(dtype, str):
        if dtype != "auto" and dtype not in DTYPES:
            raise ModelLoadError(f"unknown dtype {dtype!r}; use one of auto, {', '.join(DTYPES)}", option="dtype")
        dtype = dtype if dtype == "auto" else DTYPES[dtype]
    dev = check_device(device)
    target, extra, hub = _resolve(name)
    from transformers import AutoModelForCausalLM, AutoTokenizer

    placement = _placement(device_map)
    try:
        model = AutoModelForCausalLM.from_pretrained(target, dtype=dtype, **extra, **placement)
        tok = AutoTokenizer.from_pretrained(target, **extra) if tokenizer else None
    except (OSError, ValueError) as e:
        if hub and _not_on_hub(e):
            raise _hub_miss(name) from None
        first = str(e).strip().splitlines()[0] if str(e).strip() else type(e).__name__
        hint = ("install the GGUF extra: pip install 'lrt[gguf]'" if extra else
                "check the name, or that the hub is reachable (HF_HUB_OFFLINE=1 uses only the local cache)")
        raise ModelLoadError(f"could not load model {name!r}: {first.rstrip('.')}; {hint}") from None
    if not placement:
        model.to(dev)
    model.eval()
    if tok is not None and tok.pad_token is None:
        tok.pad_token = tok.eos_token
    return LoadedModel(model=model, tokenizer=tok, name=name, blocks=find_blocks(model),
                       fingerprint=None if hub else fingerprint(name))


def model_shape(name: str) -> tuple[int, int] | None:
    """``(width, blocks)`` of model ``name`` from its configuration alone (no weights loaded), or None when it
    cannot be read cheaply (a hub id not in the cache, an unusual config): for checks before loading."""
    try:
        target, extra, _ = _resolve(str(name))
        from transformers import AutoConfig

        conf = AutoConfig.from_pretrained(target, **extra)
    except Exception:               # noqa: BLE001 - any failure: the model's own loading reports it properly
        return None
    conf = conf.get_text_config() if hasattr(conf, "get_text_config") else conf
    width = getattr(conf, "hidden_size", None) or getattr(conf, "n_embd", None)
    blocks = getattr(conf, "num_hidden_layers", None) or getattr(conf, "n_layer", None)
    return (int(width), int(blocks)) if width and blocks else None


def _placement(device_map: str | dict | None) -> dict:
    """``from_pretrained`` keywords for a device map (a JSON file is read; ``disk`` gets an offload folder)."""
    if not device_map:
        return {}
    if isinstance(device_map, str) and device_map.endswith(".json"):
        import json

        try:
            device_map = json.loads(Path(device_map).read_text())
        except (OSError, ValueError) as e:
            raise ModelLoadError(f"cannot read the device map {device_map!r} ({e}); give auto, balanced, sequential "
                                 "or a JSON file of {module: device}", option="device_map") from None
    try:
        import accelerate  # noqa: F401
    except ImportError:
        raise ModelLoadError("a device map needs accelerate: pip install accelerate", option="device_map") from None
    out: dict = {"device_map": device_map}
    if isinstance(device_map, dict) and "disk" in device_map.values():
        import tempfile

        out["offload_folder"] = tempfile.mkdtemp(prefix="lrt-offload-")
    return out
