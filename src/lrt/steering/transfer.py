"""Carry a steering vector from the source model to the target through an affine map.

``direction``: ``A·v`` — a steering vector is a difference of two source points, and the image of a difference
is the difference of the images (the bias cancels). ``point``: ``A·v + p``, the formula as printed in the LRT
paper, kept for comparison. With ``rescale`` the result's norm is ``‖v‖ × median‖h_T‖ / median‖h_S‖`` (the
median token norms recorded when the map was fitted).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError, DimensionMismatchError
from ..maps.affine import AffineMap
from .vectors import SteeringVector

TRANSFER_MODES = ("direction", "point")


def transfer_tensor(v: torch.Tensor, m: AffineMap, mode: str = "direction", rescale: bool = False) -> torch.Tensor:
    """The transferred vector(s) ``[..., d_target]`` of ``v [..., d_source]``."""
    if mode not in TRANSFER_MODES:
        raise ConfigError(f"unknown transfer mode {mode!r}; use one of {', '.join(TRANSFER_MODES)}", option="mode")
    out = m.linear(v)
    if mode == "point":
        out = out + m.p.to(v.device, v.dtype)
    if rescale:
        ratio = m.meta["norms"]["target"]["median"] / m.meta["norms"]["source"]["median"]
        out = out * (v.norm(dim=-1, keepdim=True) * ratio / out.norm(dim=-1, keepdim=True).clamp_min(1e-12))
    return out


def check_pair(v: SteeringVector, m: AffineMap) -> None:
    """The vector was made on the map's source model (its name, path or content fingerprint) and in its tokens
    (the tokenizer fingerprint recorded by both, where both recorded one); else a :class:`ConfigError`."""
    from ..models.identity import same_model

    fps = m.meta.get("model_fingerprints") or {}
    if not same_model(v.model, m.source, v.meta.get("model_fingerprint"), fps.get("source")):
        raise ConfigError(f"the vector was made on {v.model!r} but the map starts from {m.source!r}; transfer a "
                          "vector of the map's source model", option="vector")
    tv, tm = v.meta.get("tokenizer"), (m.meta.get("tokenizers") or {}).get("source")
    if tv and tm and tv != tm:
        raise ConfigError(f"the vector was made with another tokenizer ({tv}) than the map's source model's ({tm})",
                          option="vector")


def transfer_vector(v: SteeringVector, m: AffineMap, mode: str = "direction", rescale: bool = False) -> SteeringVector:
    """``direction``: A·v (the bias cancels for a difference of points); ``point``: A·v + p (the paper's formula).

    ``meta["text_vector_on_contrast_map"]``: a vector of text states (``lrt steer --concept``) carried by a map
    refitted on contrast differences — on the Qwen pair such maps carried twelve pooled-text vectors at mean
    cos(A·v, native) 0.47 against 0.74 through the text map (docs/real-pair.md).
    """
    if str(v.layer) != str(m.source_layer):
        raise DimensionMismatchError(f"vector is at layer {v.layer} of {v.model} but the map starts at layer "
                                     f"{m.source_layer}; compute the vector at the map's source layer")
    check_pair(v, m)
    from ..maps.contrast import transfer_outlook

    out = transfer_tensor(v.vector, m, mode, rescale)
    family = (v.meta.get("data") or {}).get("family")
    seen = sorted(s for s, f in (m.meta.get("contrast", {}).get("families") or {}).items() if family and f == family)
    meta = {**v.meta, "origin": f"transferred-{mode}", "source_model": v.model, "source_layer": v.layer,
            "source_norm": v.norm, "rescaled": rescale, "layer_median_norm": m.meta["norms"]["target"]["median"],
            "map_heldout_r2": m.meta.get("metrics", {}).get("heldout", {}).get("r2"),
            "outlook": transfer_outlook(m, v.vector), "source_split_half_cos": v.meta.get("split_half_cos"),
            "map_saw_behaviour": seen,
            "text_vector_on_contrast_map": bool(v.meta.get("concept")) and bool(m.meta.get("contrast")),
            "model_fingerprint": (m.meta.get("model_fingerprints") or {}).get("target"),
            "tokenizer": (m.meta.get("tokenizers") or {}).get("target")}
    return SteeringVector(vector=out, model=m.target, layer=m.target_layer, method=v.method, n_pairs=v.n_pairs,
                          meta=meta)
