"""An SAE judged on a model: FVU, L0, dead latents and Δloss on held-out text (the stitching paper's Table 2).

Δloss is the increase of next-token cross-entropy when the SAE's reconstruction replaces the layer's output at
every position but the first (the attention sink, as in the stitched loss). Every number comes from the same
held-out tokens: documents of the held-out split (salted hash, ``split_percent``) of the corpus.
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..models.load import LoadedModel
from ..sae.model import SparseAutoencoder
from .config import StitchConfig
from .stitch import Scores, forward_with, heldout_batches, replace_with


@torch.no_grad()
def sae_metrics(lm: LoadedModel, sae: SparseAutoencoder, cfg: StitchConfig | None = None,
                split_percent: float = 10.0) -> dict:
    """``{"fvu", "l0", "dead_fraction", "ce", "ce_reconstructed", "delta_loss", "tokens"}`` of ``sae`` on ``lm``
    at the SAE's layer."""
    cfg = cfg or StitchConfig()
    layer = lm.layer_index(sae.meta.get("layer"))
    sae.check_input(lm.d_model)
    sc, n, err, tot, l0, rows = Scores(), 0, 0.0, 0.0, 0.0, 0
    fired = torch.zeros(sae.d_sae, dtype=torch.bool)
    s1, s2 = torch.zeros(lm.d_model, dtype=torch.float64), 0.0
    bar = tqdm(total=cfg.eval_tokens, unit="tok", unit_scale=True, desc="sae eval", disable=not cfg.progress)
    for ids, mask in heldout_batches(lm.tokenizer, cfg, cfg.eval_split_percent or split_percent):
        valid = (mask[:, 1:] & mask[:, :-1]).bool()
        valid[:, 0] = False
        own, hs = forward_with(lm, ids, mask, read=[layer])
        h = hs[layer].float()
        z = sae.encode(h)
        rec = sae.decode(z)
        keep = mask.bool().clone()
        keep[:, 0] = False
        x, r, zk = h[keep].double(), rec[keep].double(), z[keep]
        err += float((x - r).pow(2).sum())
        s1 += x.sum(0)
        s2 += float(x.pow(2).sum())
        rows += len(x)
        l0 += float((zk > 0).sum())
        fired |= (zk > 0).any(0).cpu()
        sc.add("model", own, ids, valid)
        sc.add("reconstructed", forward_with(lm, ids, mask, put={layer: replace_with(rec)})[0], ids, valid, own)
        n += int(valid.sum())
        bar.update(min(int(mask.sum()), max(0, bar.total - bar.n)))
    bar.close()
    tot = s2 - float(s1.pow(2).sum()) / max(rows, 1)
    ce, ce_rec = sc.nll["model"] / n, sc.nll["reconstructed"] / n
    return {"tokens": n, "rows": rows, "fvu": round(err / max(tot, 1e-300), 6), "l0": round(l0 / max(rows, 1), 3),
            "dead_fraction": round(1 - float(fired.float().mean()), 6), "ce": round(ce, 6),
            "ce_reconstructed": round(ce_rec, 6), "delta_loss": round(ce_rec - ce, 6),
            "kl": round(sc.kl["reconstructed"] / n, 6), "model": lm.name, "layer": sae.meta.get("layer")}


def delta_loss_probe(lm: LoadedModel, cfg: StitchConfig, tokens: int, split_percent: float = 10.0):
    """``sae -> {"delta_loss": ...}`` on the same first ``tokens`` held-out tokens each call (for the training
    curve's metric rows); ``None`` when ``tokens`` is 0."""
    if not tokens:
        return None
    from dataclasses import replace

    quick = replace(cfg, eval_tokens=tokens, progress=False)
    return lambda sae: {"delta_loss": sae_metrics(lm, sae, quick, split_percent)["delta_loss"]}
