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

:func:`refit_decoder` then improves the transferred SAE as an *initialisation* of the large model's SAE: every
transferred decoder row lies in the up map's image (rank ≤ the small width), so the large model's own directions
outside it are missing. With the encoder kept, the decoder is refitted in closed form on the large model's states
given the SAE's codes (an affine map codes → state, moments from the nonzero codes only, ridge on held-out rows),
and each refitted row put back to unit norm — directions only, so the codes' scale (and Adam's relative step) is
the one the training starts from either way. The encoder has the same blind spot: it reads the large state only
through the down map (``W_enc' = A↓ᵀ·W_enc``, rank ≤ the small width). :func:`complete_encoder` gives each encoder
column the part of its latent's refitted direction that lies outside the encoder's column space, scaled as the
column is inside it (a tied SAE, encoder = decoderᵀ, would have that part exactly at γ = 1); the refit chooses γ
from :data:`GAMMAS` by held-out FVU. On zoo-xs → zoo-m it chose 0.375 and raised the saving of the start from
50% to 64% before charges, 58% with the maps and the refit charged (docs/benchmarks.md).
"""

from __future__ import annotations

import time

import torch

from typing import Iterable

from ..errors import ConfigError, DimensionMismatchError
from ..maps.affine import AffineMap
from ..maps.config import FitConfig
from .model import SparseAutoencoder

GAMMAS = (0.0, 0.25, 0.375, 0.5, 0.625, 0.75, 1.0)
"""Fractions of the out-of-space part the encoder completion tries (0: the encoder as transferred)."""


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


def unit_decoder_copy(sae: SparseAutoencoder, meta: dict) -> SparseAutoencoder:
    """A copy of ``sae`` with unit-norm decoder rows, each row's norm folded into its encoder column and bias (the
    reconstruction of any given codes is unchanged; a TopK selection may change). For starting training from a
    transferred SAE, whose decoder rows are not unit norm."""
    t = sae.tensors()
    n = t["W_dec"].norm(dim=1).clamp_min(1e-12)
    t = {**t, "W_dec": t["W_dec"] / n[:, None], "W_enc": t["W_enc"] * n, "b_enc": t["b_enc"] * n}
    return SparseAutoencoder.from_tensors(t, sae.architecture, sae.k, sae.apply_b_dec_to_input,
                                          {**meta, "init": {k: v for k, v in sae.meta.items() if k != "layer_note"}})


@torch.no_grad()
def refit_decoder(sae: SparseAutoencoder, items: Iterable[tuple[torch.Tensor | None, bool]], rows: int,
                  cfg: FitConfig | None = None, skip_heldout: int = 0) -> tuple[SparseAutoencoder, dict]:
    """``(sae', info)``: ``sae`` (its decoder rows first made unit norm, norms folded into the encoder, as training
    from it would) with its decoder refitted on the first ``rows`` training rows of ``items`` — ``(rows [n, d],
    heldout)`` of the model the SAE is for, e.g. :func:`lrt.harvest.paired.stream_rows` — given its own codes:
    ``x ≈ W·z + b`` by the streaming closed form (:meth:`MomentStats.of_sparse`; the ridge chosen on held-out rows,
    of which up to ``rows // 4`` are used, after passing over the items holding the first ``skip_heldout`` held-out
    rows — the rows a training curve will be measured on, so that the ridge and γ are not chosen on them; if no
    other held-out rows come, those are used and ``info["heldout_overlaps_eval"]`` says so). Each latent that fired gets the unit-norm direction of its refitted
    column, ``b_dec`` the fitted bias; a latent that never fired keeps its row. If the encoder's rank is below its
    width (a transferred SAE), it is then completed (:func:`complete_encoder`) with the γ of :data:`GAMMAS` that gives
    the lowest FVU on the first ≤ 2,048 of the held-out sample (γ = 0: unchanged); otherwise the encoder is
    unchanged. ``info``:
    rows (and the rows streamed to find them), ridge, held-out FVU before and after (on a sample of ≤ 4,096 of
    those held-out rows), the refitted rows' norms, the completion (rank, γ, FVU by γ), the wall time (streaming
    the rows included), and the FLOPs
    (dense encoder product ``2·n·d·latents``, sparse moments ``2·n·(k² + k·d) + 2·n·d²``, one solve of
    ``(latents+1)³`` per ridge tried, the γ search's encodes and decodes — counted, not measured: sparse products
    are invisible to FlopCounterMode)."""
    from ..maps.judge import PairStats, solve_and_judge
    from ..stats.moments import MomentStats
    from ..stats.samples import Reservoir

    if rows < 1:
        raise ConfigError(f"the decoder refit needs rows >= 1, got {rows}", option="refit_tokens")
    cfg = cfg or FitConfig(shuffled_control=False)
    t0 = time.perf_counter()
    base = unit_decoder_copy(sae, {})
    base.meta = dict(sae.meta)                                   # the same SAE, only its decoder scale moved
    n, d = base.d_sae, base.d_in
    train, held = MomentStats(n, d), MomentStats(n, d)
    sample = Reservoir(4096, seed=cfg.seed)
    streamed = skipped = 0                                       # rows the stream produced (used or passed over)
    spare: list[torch.Tensor] = []                               # the skipped held-out rows, if no others come

    def take(x: torch.Tensor, is_held: bool) -> None:
        x = x.float()
        z = base.encode(x)
        (held if is_held else train).merge(MomentStats.of_sparse(z, x, "cpu"))
        if is_held:
            sample.update(z, x)

    for x, is_held in items:
        if x is None:
            continue
        streamed += len(x)
        if is_held and skipped < skip_heldout:
            skipped += len(x)
            spare.append(x)
            continue
        if is_held:
            if held.n >= max(rows // 4, 1):
                continue
        elif train.n >= rows:
            if held.n >= min(rows // 4, 1000):
                break
            continue
        take(x, is_held)
    overlap = held.n == 0 and bool(spare)
    for x in spare if overlap else []:                           # nothing else held out: choose on those, say so
        take(x, True)
    if train.n < 2:
        raise ConfigError(f"the decoder refit got {train.n} training rows; give more tokens", option="refit_tokens")
    W, b, fit = solve_and_judge(PairStats(train, held, held, None, sample.x, sample.y), cfg)   # x ≈ W·z + b
    cols = W.T.float()                                           # [latents, d]: latent j's refitted direction
    fired = train.mean_x > 0
    norms = cols.norm(dim=1)
    out = SparseAutoencoder.from_tensors(base.tensors(), base.architecture, base.k, base.apply_b_dec_to_input,
                                         dict(base.meta))
    out.W_dec.data[fired] = cols[fired] / norms[fired, None].clamp_min(1e-12)
    out.b_dec.data = b.float()
    ev = sample.y                                                # held-out rows (≤ 4096), or None
    k = base.k or n
    grid = 1 if cfg.ridge is not None else len(cfg.ridge_grid)
    flops = int(2 * (train.n + held.n) * (d * n + k * k + k * d + d * d) + grid * (n + 1) ** 3)
    info = {"rows": train.n, "heldout_rows": held.n, "streamed_rows": streamed, "ridge": fit["ridge"],
            "heldout_overlaps_eval": overlap,
            "latents_refitted": int(fired.sum()),
            "heldout_fvu_before": None if ev is None else round(base.fvu(ev), 6),
            "refitted_row_norm": {"median": round(float(norms[fired].median()), 4) if fired.any() else None},
            "flops": flops}
    basis = encoder_basis(base)
    info["encoder_completion"] = None
    if basis is not None and ev is not None:
        m = ev[:2048]                                            # γ by held-out FVU of the start
        cands = {g: complete_encoder(out, g, basis) if g else out for g in GAMMAS}
        fvus = {g: c.fvu(m) for g, c in cands.items()}
        gamma = min(fvus, key=fvus.get)
        out = cands[gamma]
        # each candidate: built (4·n·d·r), encoded and decoded densely on m rows; the SVD, roughly
        cost = (len(GAMMAS) * (len(m) * 4 * d * n + 4 * n * d * basis.shape[1]) + 4 * d * d * n + 8 * d ** 3)
        info["encoder_completion"] = {"rank": basis.shape[1], "gamma": gamma, "flops": cost,
                                      "fvu_by_gamma": {str(g): round(v, 6) for g, v in fvus.items()}}
        info["flops"] += cost
    info["heldout_fvu_after"] = None if ev is None else round(out.fvu(ev), 6)
    info["seconds"] = round(time.perf_counter() - t0, 2)                 # with the rows' forward passes
    out.meta = {**base.meta, "decoder_refit": info}
    return out, info


def encoder_basis(sae: SparseAutoencoder, tol: float = 1e-4) -> torch.Tensor | None:
    """An orthonormal basis ``[d_in, r]`` of the encoder's column space when its rank ``r`` is below ``d_in`` (a
    transferred SAE: ``r`` ≤ the small width), else None."""
    U, S, _ = torch.linalg.svd(sae.W_enc.detach().double(), full_matrices=False)
    r = int((S > S[0] * tol).sum())
    return U[:, :r] if r < sae.d_in else None


@torch.no_grad()
def complete_encoder(sae: SparseAutoencoder, gamma: float, basis: torch.Tensor) -> SparseAutoencoder:
    """A copy of ``sae`` whose encoder column ``e_j`` gains ``γ·s_j·(d_j − Π·d_j)``: latent ``j``'s decoder
    direction outside the space ``basis`` spans (``Π`` its projection), scaled by ``s_j = e_j·Π·d_j / ‖Π·d_j‖²``, the
    column's scale along the direction inside it. Latents with ``‖Π·d_j‖² < 0.01`` are left as they are."""
    E, D = sae.W_enc.detach().double(), sae.W_dec.detach().double()    # [d, n], [n, d]
    inside = (D @ basis) @ basis.T
    q = inside.pow(2).sum(1)
    s = torch.where(q >= 0.01, (E.T * inside).sum(1) / q.clamp_min(0.01), torch.zeros_like(q))
    t = {**sae.tensors(), "W_enc": (E + gamma * ((D - inside) * s[:, None]).T).float()}
    return SparseAutoencoder.from_tensors(t, sae.architecture, sae.k, sae.apply_b_dec_to_input, dict(sae.meta))
