"""Carry a steering vector from the source model to the target through an affine map."""

from __future__ import annotations

from ..errors import DimensionMismatchError
from ..maps import AffineMap
from .vectors import SteeringVector


def transfer_vector(v: SteeringVector, m: AffineMap, mode: str = "direction", rescale: bool = False) -> SteeringVector:
    """``direction``: A·v (the bias cancels for a difference of points); ``point``: A·v + p (the paper's formula)."""
    if str(v.layer) != str(m.source_layer):
        raise DimensionMismatchError(f"vector is at layer {v.layer} of {v.model} but the map starts at layer "
                                     f"{m.source_layer}; compute the vector at the map's source layer")
    out = m.transfer(v.vector, mode=mode, rescale=rescale)
    meta = {**v.meta, "origin": f"transferred-{mode}", "source_model": v.model, "source_layer": v.layer,
            "source_norm": v.norm, "rescaled": rescale, "layer_median_norm": m.meta["norms"]["target"]["median"],
            "map_heldout_r2": m.meta.get("metrics", {}).get("heldout", {}).get("r2")}
    return SteeringVector(vector=out, model=m.target, layer=m.target_layer, method=v.method, n_pairs=v.n_pairs,
                          meta=meta)
