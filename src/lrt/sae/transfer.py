"""Carry an SAE of the small model to the large one through the pair of affine maps (model stitching §4).

With the up map ``h_L ≈ A↑·h_S + p↑`` and the down map ``h_S ≈ A↓·h_L + p↓`` (column vectors, lrt's convention;
both from one harvest: ``lrt fit-map --both`` or a sweep), the transferred SAE encodes a large-model state by
mapping it down first, and decodes in the small space, then maps up. In the SAE's row-vector tensors:

    pre'(h_L) = (h_L·A↓ᵀ + p↓ − c·b_dec)·W_enc + b_enc  ⇒  W_enc' = A↓ᵀ·W_enc,  b_enc' = b_enc + (p↓ − c·b_dec)·W_enc
    x̂'(z)     = (z·W_dec + b_dec)·A↑ᵀ + p↑              ⇒  W_dec' = W_dec·A↑ᵀ,  b_dec' = b_dec·A↑ᵀ + p↑

(``c`` = the source SAE's ``apply_b_dec_to_input``; the result does not subtract its own b_dec: ``c' = 0``). This
is the paper's θ' = (P↓W_e, b↓W_e + b_e, W_dP↑, b_dP↑ + b↑) in its row convention, with ``P = Aᵀ``. The codes of
``h_L`` are then exactly the source SAE's codes of ``A↓·h_L + p↓`` — the same k, thresholds and latents — and the
decoder rows are no longer unit norm (their norms are recorded).
"""

from __future__ import annotations

import torch

from ..errors import DimensionMismatchError
from ..maps.affine import AffineMap
from .model import SparseAutoencoder


def check_chain(sae: SparseAutoencoder, up: AffineMap, down: AffineMap) -> None:
    """The maps chain: down goes large → small into the SAE's width, up small → large back out, one layer pair."""
    if down.d_target != sae.d_in or up.d_source != sae.d_in:
        raise DimensionMismatchError(f"the SAE reads width {sae.d_in} but the down map writes width {down.d_target} "
                                     f"and the up map reads width {up.d_source}; give the maps of the SAE's model")
    if down.d_source != up.d_target or (down.source, down.target) != (up.target, up.source) or \
            (str(down.source_layer), str(down.target_layer)) != (str(up.target_layer), str(up.source_layer)):
        raise DimensionMismatchError(f"the down map ({down.source} L{down.source_layer} → {down.target} "
                                     f"L{down.target_layer}) is not the inverse pair of the up map ({up.source} "
                                     f"L{up.source_layer} → {up.target} L{up.target_layer}); fit both with "
                                     "lrt fit-map --both")
    layer = sae.meta.get("layer")
    if layer is not None and str(layer) != str(up.source_layer):
        raise DimensionMismatchError(f"the SAE is for layer {layer} but the up map starts at layer {up.source_layer}")


@torch.no_grad()
def transfer_sae(sae: SparseAutoencoder, up: AffineMap, down: AffineMap) -> SparseAutoencoder:
    """The large model's SAE made of ``sae`` and the two maps (see the module docstring)."""
    check_chain(sae, up, down)
    A_up, p_up = up.A.double(), up.p.double()
    A_dn, p_dn = down.A.double(), down.p.double()
    W_e, b_e, W_d, b_d = (t.double() for t in (sae.W_enc, sae.b_enc, sae.W_dec, sae.b_dec))
    c = 1.0 if sae.apply_b_dec_to_input else 0.0
    t = {"W_enc": A_dn.T @ W_e, "b_enc": b_e + (p_dn - c * b_d) @ W_e, "W_dec": W_d @ A_up.T,
         "b_dec": b_d @ A_up.T + p_up}
    if sae.threshold is not None:
        t["threshold"] = sae.threshold.double()
    meta = {"model": up.target, "layer": up.target_layer, "origin": "transferred",
            "source_sae": {k: v for k, v in sae.meta.items() if k != "layer_note"},
            "maps": {"up": f"{up.source} L{up.source_layer} → {up.target} L{up.target_layer}",
                     "down": f"{down.source} L{down.source_layer} → {down.target} L{down.target_layer}"},
            "decoder_row_norm": {"mean": round(float(t["W_dec"].norm(dim=1).mean()), 6),
                                 "min": round(float(t["W_dec"].norm(dim=1).min()), 6)}}
    return SparseAutoencoder.from_tensors({k: v.float() for k, v in t.items()}, sae.architecture, sae.k, False, meta)
