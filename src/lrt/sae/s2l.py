"""The LRT paper's s2l map: from the small model's SAE *codes* to the large model's hidden state.

``h_L ≈ A·z_S + p`` with ``z_S`` the small SAE's codes of the small model's state at the same token, fitted by the
streaming closed form on moments accumulated from the nonzero codes only
(:meth:`~lrt.stats.moments.MomentStats.of_sparse`), the ridge chosen on held-out rows like every map. Column
``A[:, f]`` is feature f's direction in the large model (the bias excluded, as for any difference of states):
one small-model feature steers the large model (:func:`feature_direction`).
"""

from __future__ import annotations

import torch

from ..errors import ConfigError
from ..harvest.config import HarvestConfig
from ..harvest.paired import harvest_pairs
from ..maps.affine import AffineMap
from ..maps.config import FitConfig
from ..maps.judge import PairStats, solve_and_judge
from ..models.layers import LayerSpec, layer_name
from ..models.load import LoadedModel
from ..models.tokenizer_check import check_tokenizers
from ..stats.moments import MomentStats
from ..stats.samples import Reservoir
from .model import SparseAutoencoder


def fit_s2l(small: LoadedModel, large: LoadedModel, sae: SparseAutoencoder, target_layer: LayerSpec,
            harvest: HarvestConfig, cfg: FitConfig | None = None) -> AffineMap:
    """Harvest both models on ``harvest.corpus``, encode the small model's states with ``sae`` (at its layer) and
    fit the affine map codes → ``target_layer`` of ``large``."""
    cfg = cfg or FitConfig()
    check_tokenizers(small.tokenizer, large.tokenizer, small.name, large.name)
    if sae.meta.get("layer") is None:
        raise ConfigError("the SAE does not say its layer; set it (lrt sae evaluate --layer shows the rule)")
    ls, lt = small.layer_index(sae.meta["layer"]), large.layer_index(target_layer)
    sae.check_input(small.d_model)
    dev = large.device
    train, held = MomentStats(sae.d_sae, large.d_model, dev), MomentStats(sae.d_sae, large.d_model, dev)
    sample = Reservoir(min(cfg.heldout_sample, 4096), seed=cfg.seed)
    for batch in harvest_pairs(small, large, [ls], [lt], harvest):
        with torch.no_grad():
            z = sae.encode(batch.source[ls].to(sae.W_enc.device)).to(dev)
        y = batch.target[lt]
        (held if batch.heldout else train).merge(MomentStats.of_sparse(z, y, dev))
        if batch.heldout:
            sample.update(z, y)
    if train.n < 2:
        raise ConfigError(f"only {train.n} training rows were harvested; raise the token budget", option="tokens")
    A, p, info = solve_and_judge(PairStats(train, held, held, None, sample.x, sample.y), cfg)
    meta = {**info, "input": "sae_codes", "sae": {k: v for k, v in sae.meta.items() if k != "layer_note"},
            "d_sae": sae.d_sae, "tokens": {"train_rows": train.n, "heldout_rows": held.n},
            "harvest": {"corpus": harvest.corpus, "tokens": harvest.tokens, "heldout_percent": harvest.heldout_percent},
            "mean_active_codes": round(float((train.mean_x > 0).sum()), 1)}
    return AffineMap(A.float().cpu(), p.float().cpu(), small.name, large.name, layer_name(ls), layer_name(lt), meta)


def feature_direction(s2l: AffineMap, feature: int) -> torch.Tensor:
    """Feature ``feature``'s direction in the large model: the map's column (no bias)."""
    if s2l.meta.get("input") != "sae_codes":
        raise ConfigError("this map does not start from SAE codes; fit it with fit_s2l")
    if not 0 <= feature < s2l.d_source:
        raise ConfigError(f"feature {feature} is out of range: the SAE has {s2l.d_source} latents")
    return s2l.A[:, feature].clone()
