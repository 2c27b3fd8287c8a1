"""SAEs on disk in the formats people have: SAELens (v6, and older flat configs), EleutherAI sparsify, GemmaScope.

- **SAELens**: ``cfg.json`` + ``sae_weights.safetensors`` (``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``,
  ``b_enc``, ``b_dec``, ``threshold`` for JumpReLU); ``cfg.json`` has ``d_in``, ``d_sae``, ``architecture``,
  ``apply_b_dec_to_input``, ``normalize_activations``, ``k`` (TopK), ``metadata`` {``model_name``,
  ``hook_name``, …}. Older configs keep ``hook_name``/``hook_point``/``model_name`` at the top level and TopK's
  ``k`` in ``activation_fn_kwargs``. lrt writes this format (with its own provenance under ``metadata.lrt``:
  format version, layer, sha256 of the weights).
- **sparsify**: one folder per hookpoint (``layers.L``) with ``cfg.json`` (``k``, ``num_latents``,
  ``expansion_factor``, ``normalize_decoder``, ``d_in``, …) + ``sae.safetensors`` (``encoder.weight
  [num_latents, d_in]``, ``encoder.bias``, ``W_dec [num_latents, d_in]``, ``b_dec``); always TopK with b_dec
  subtracted from the input.
- **GemmaScope**: ``params.npz`` (``W_enc``, ``W_dec``, ``b_enc``, ``b_dec``, ``threshold``; JumpReLU, no b_dec
  subtraction), read with ``allow_pickle=False``; the layer from a ``layer_N`` folder name.

Hook names are mapped to lrt's layer convention (layer L = output of block L) and the mapping is recorded in
``meta["layer_note"]``: ``blocks.L.hook_resid_post`` and sparsify's ``layers.L`` are layer L,
``blocks.L.hook_resid_pre`` is layer L − 1 (``embed`` for L = 0).
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file

from ..errors import ArtifactError
from ..io.files import atomic_path, atomic_write_text, ensure_writable, sha256_file, to_json
from ..models.layers import hook_names, layer_name
from .model import ARCHITECTURES, SparseAutoencoder

FORMAT_VERSION = 1
EXPECTED = ("SAELens: cfg.json + sae_weights.safetensors; sparsify: cfg.json + sae.safetensors; "
            "GemmaScope: params.npz")


def layer_of_hook(hook: str | None) -> tuple[int | str | None, str]:
    """(lrt layer, note) of a hook name; ``None`` when the name is not a residual-stream hook lrt knows."""
    if not hook:
        return None, "no hook name recorded"
    if m := re.fullmatch(r"blocks\.(\d+)\.hook_resid_post", hook):
        return int(m[1]), f"{hook} = lrt layer {m[1]} (output of block {m[1]})"
    if m := re.fullmatch(r"blocks\.(\d+)\.hook_resid_pre", hook):
        L = layer_name(int(m[1]) - 1)
        return L, f"{hook} = lrt layer {L} (the input of block {m[1]})"
    if m := re.fullmatch(r"(?:.*\.)?layers\.(\d+)", hook):
        return int(m[1]), f"{hook} = lrt layer {m[1]} (output of block {m[1]})"
    if m := re.search(r"layer_(\d+)", hook):
        return int(m[1]), f"{hook} = lrt layer {m[1]} (GemmaScope residual SAEs read the output of block {m[1]})"
    return None, f"hook {hook!r} is not a residual-stream hook lrt maps to a layer"


def save_saelens(sae: SparseAutoencoder, directory: str | os.PathLike) -> Path:
    """Write ``sae`` as a SAELens v6 folder (``SAE.load_from_disk`` reads it)."""
    d = ensure_writable(directory)
    wpath = d / "sae_weights.safetensors"
    with atomic_path(wpath) as tmp:
        save_file(sae.tensors(), tmp)
        digest = sha256_file(tmp)
    layer = sae.meta.get("layer")
    cfg = {"d_in": sae.d_in, "d_sae": sae.d_sae, "dtype": "float32", "device": "cpu",
           "apply_b_dec_to_input": sae.apply_b_dec_to_input, "normalize_activations": "none",
           "reshape_activations": "none", "architecture": sae.architecture,
           # sae_lens_version: the config layout written (SAELens reads configs without it as pre-6.0 and drops
           # the metadata block); lrt's own version and provenance are under metadata.lrt
           "metadata": {"sae_lens_version": "6.0.0", "sae_lens_training_version": None,
                        "model_name": sae.meta.get("model"),
                        "hook_name": hook_names(layer)["transformer_lens"] if layer is not None else None,
                        "context_size": sae.meta.get("context_size"), "prepend_bos": False,
                        "dataset_path": sae.meta.get("corpus"),
                        "lrt": {"format_version": FORMAT_VERSION, "sha256": digest,
                                **{k: v for k, v in sae.meta.items() if k != "layer_note"}}}}
    if sae.architecture == "topk":
        cfg["k"] = sae.k
        cfg["rescale_acts_by_decoder_norm"] = False
    atomic_write_text(d / "cfg.json", to_json(cfg))
    return d


def save_sparsify(sae: SparseAutoencoder, directory: str | os.PathLike) -> Path:
    """Write a TopK ``sae`` (b_dec subtracted from the input) as a sparsify ``SparseCoder`` folder."""
    if sae.architecture != "topk" or not sae.apply_b_dec_to_input:
        raise ArtifactError("sparsify holds TopK SAEs that subtract b_dec from their input; write this SAE in "
                            "SAELens format instead")
    d = ensure_writable(directory)
    t = sae.tensors()
    with atomic_path(d / "sae.safetensors") as tmp:
        save_file({"encoder.weight": t["W_enc"].T.contiguous(), "encoder.bias": t["b_enc"], "W_dec": t["W_dec"],
                   "b_dec": t["b_dec"]}, tmp)
    cfg = {"activation": "topk", "expansion_factor": max(1, sae.d_sae // sae.d_in), "normalize_decoder": True,
           "num_latents": sae.d_sae, "k": sae.k, "multi_topk": False, "skip_connection": False, "transcode": False,
           "d_in": sae.d_in}
    atomic_write_text(d / "cfg.json", to_json(cfg))
    return d


def load_sae(directory: str | os.PathLike) -> SparseAutoencoder:
    """Read an SAE folder in any of the three formats (see the module docstring); one clear error otherwise."""
    d = Path(directory)
    if d.is_file() and d.name == "params.npz":
        d = d.parent
    if not d.is_dir():
        raise ArtifactError(f"SAE folder {str(d)!r} does not exist")
    if (d / "cfg.json").exists() and (d / "sae_weights.safetensors").exists():
        return _load_saelens(d)
    if (d / "cfg.json").exists() and (d / "sae.safetensors").exists():
        return _load_sparsify(d)
    if (d / "params.npz").exists():
        return _load_gemmascope(d)
    have = ", ".join(sorted(p.name for p in d.iterdir())[:8]) or "nothing"
    raise ArtifactError(f"{d} is in no SAE format lrt reads (it holds {have}); expected {EXPECTED}")


def _cfg(path: Path) -> dict:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ArtifactError(f"{path} is not valid JSON ({e})") from None


def _layer_meta(meta: dict, hook: str | None, model: str | None) -> dict:
    layer, note = layer_of_hook(hook)
    return {**meta, "model": model, "hook_name": hook, "layer": layer, "layer_note": note}


def _load_saelens(d: Path) -> SparseAutoencoder:
    cfg = _cfg(d / "cfg.json")
    md = cfg.get("metadata") or {}
    arch = cfg.get("architecture", "standard")
    if arch not in ARCHITECTURES:
        raise ArtifactError(f"{d}: SAELens architecture {arch!r} is not one lrt runs ({', '.join(ARCHITECTURES)})")
    if cfg.get("normalize_activations", "none") not in ("none", None):
        raise ArtifactError(f"{d}: normalize_activations={cfg['normalize_activations']!r} is not supported; lrt "
                            "reads SAEs on raw activations")
    k = cfg.get("k") or (cfg.get("activation_fn_kwargs") or {}).get("k")
    t = load_file(str(d / "sae_weights.safetensors"))
    lrt_md = md.get("lrt") or {}
    if lrt_md.get("sha256") and lrt_md["sha256"] != sha256_file(d / "sae_weights.safetensors"):
        raise ArtifactError(f"{d / 'sae_weights.safetensors'} does not match the sha256 lrt recorded in cfg.json: "
                            "the weights were modified or damaged")
    if arch == "jumprelu" and "threshold" not in t:
        raise ArtifactError(f"{d}: a JumpReLU SAE needs a 'threshold' tensor in sae_weights.safetensors; it has "
                            f"{', '.join(sorted(t))}")
    hook = md.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
    model = md.get("model_name") or cfg.get("model_name")
    meta = _layer_meta({k2: v for k2, v in lrt_md.items() if k2 not in ("sha256", "format_version", "layer")},
                       hook, model)
    if lrt_md.get("layer") is not None:
        meta["layer"] = lrt_md["layer"]
    return SparseAutoencoder.from_tensors(t, arch, k, bool(cfg.get("apply_b_dec_to_input", True)),
                                          {**meta, "format": "saelens"})


def _load_sparsify(d: Path) -> SparseAutoencoder:
    cfg = _cfg(d / "cfg.json")
    if cfg.get("transcode") or cfg.get("skip_connection") or cfg.get("activation", "topk") != "topk":
        raise ArtifactError(f"{d}: lrt reads sparsify TopK SAEs (no transcoder, skip connection or groupmax)")
    t = load_file(str(d / "sae.safetensors"))
    missing = [k for k in ("encoder.weight", "encoder.bias", "W_dec", "b_dec") if k not in t]
    if missing:
        raise ArtifactError(f"{d / 'sae.safetensors'} lacks {', '.join(missing)}")
    tensors = {"W_enc": t["encoder.weight"].T, "b_enc": t["encoder.bias"], "W_dec": t["W_dec"], "b_dec": t["b_dec"]}
    return SparseAutoencoder.from_tensors(tensors, "topk", int(cfg["k"]), True,
                                          {**_layer_meta({}, d.name, None), "format": "sparsify"})


def _load_gemmascope(d: Path) -> SparseAutoencoder:
    import numpy as np

    with np.load(d / "params.npz", allow_pickle=False) as z:
        t = {k: torch.from_numpy(z[k].copy()) for k in z.files}
    if "threshold" not in t:
        raise ArtifactError(f"{d / 'params.npz'} has no 'threshold' array: GemmaScope SAEs are JumpReLU and need "
                            f"one (it has {', '.join(sorted(t))})")
    return SparseAutoencoder.from_tensors(t, "jumprelu", None, False,
                                          {**_layer_meta({}, str(d), None), "format": "gemmascope"})
