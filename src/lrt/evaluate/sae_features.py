"""Feature-level transfer (model stitching §5): does each latent of a transferred SAE match one of the large
model's own SAE, and which kinds of latents transfer?

On held-out tokens of the large model, for every latent ``i`` of the transferred SAE:

- ``decoder_cos``: the best cosine between its decoder row and any decoder row of the native SAE;
- ``activation_corr``: the best Pearson correlation of its activations with any native latent's, on the same
  tokens (from running sums: one pass, no activations stored);
- its **kind**: the share of its activation variance explained by the current token's identity (η², the
  correlation ratio; tokens seen fewer than 3 times pooled into one group) and by the position in the sequence; a latent with ``max(η²_token, η²_position) ≥ 0.8`` is
  *structural* (it fires on a token or a position whatever the context), otherwise *semantic* (its activation
  depends on context); a latent active on fewer than ``min_fires`` tokens is *rare* (not classified);
- the top-activating snippets of the best- and worst-matching latents (what users open Neuronpedia for).
"""

from __future__ import annotations

import torch
from tqdm.auto import tqdm

from ..harvest.capture import keep_mask, run_with_capture
from ..models.load import LoadedModel
from ..sae.model import SparseAutoencoder
from .config import StitchConfig
from .stitch import heldout_batches

STRUCTURAL = 0.8


def _eta2(sum_a: torch.Tensor, sum_a2: torch.Tensor, group_sum: torch.Tensor, group_n: torch.Tensor,
          n: int) -> torch.Tensor:
    """Correlation ratio per latent: Σ_g n_g·(mean_g − mean)² / Σ (a − mean)²; ``group_sum [G, m]``."""
    mean = sum_a / n
    between = (group_sum ** 2 / group_n.clamp_min(1)[:, None]).sum(0) - n * mean ** 2
    total = sum_a2 - n * mean ** 2
    return (between / total.clamp_min(1e-12)).clamp(0, 1)


@torch.no_grad()
def feature_match(lm: LoadedModel, transferred: SparseAutoencoder, native: SparseAutoencoder,
                  cfg: StitchConfig | None = None, split_percent: float = 10.0, min_fires: int = 10,
                  n_show: int = 5, window: int = 8) -> dict:
    """Per-latent scores, their distributions by kind, and snippets (see the module docstring)."""
    cfg = cfg or StitchConfig()
    layer = lm.layer_index(transferred.meta.get("layer"))
    transferred.check_input(lm.d_model)
    native.check_input(lm.d_model)
    mt, mn = transferred.d_sae, native.d_sae
    f64 = dict(dtype=torch.float64)
    st, st2, sn, sn2 = torch.zeros(mt, **f64), torch.zeros(mt, **f64), torch.zeros(mn, **f64), torch.zeros(mn, **f64)
    cross = torch.zeros(mt, mn, **f64)
    fires = torch.zeros(mt, dtype=torch.long)
    tok_sum: dict[int, torch.Tensor] = {}
    pos_sum = torch.zeros(cfg.eval_context, mt, **f64)
    pos_n = torch.zeros(cfg.eval_context, **f64)
    tok_n: dict[int, int] = {}
    top = torch.full((mt, n_show), -1.0, **f64)
    where = torch.zeros(mt, n_show, 2, dtype=torch.long)
    seqs: list[torch.Tensor] = []
    n = 0
    bar = tqdm(total=cfg.eval_tokens, unit="tok", unit_scale=True, desc="features", disable=not cfg.progress)
    for ids, mask in heldout_batches(lm.tokenizer, cfg, cfg.eval_split_percent or split_percent):
        bar.update(min(int(mask.sum()), max(0, bar.total - bar.n)))
        h = run_with_capture(lm, [layer], ids.to(lm.device), mask.to(lm.device))[layer].float()
        keep = keep_mask(mask).bool()
        zt, zn = transferred.encode(h)[keep].double().cpu(), native.encode(h)[keep].double().cpu()
        tok = ids[keep]
        pos = torch.arange(ids.shape[1]).expand_as(ids)[keep]
        seq = (torch.arange(ids.shape[0])[:, None] + len(seqs)).expand_as(ids)[keep]
        seqs.extend(ids)
        n += len(zt)
        st += zt.sum(0)
        st2 += (zt ** 2).sum(0)
        sn += zn.sum(0)
        sn2 += (zn ** 2).sum(0)
        cross += zt.T @ zn
        fires += (zt > 0).sum(0)
        pos_sum.index_add_(0, pos, zt)
        pos_n += torch.bincount(pos, minlength=cfg.eval_context).double()
        uniq, inv = tok.unique(return_inverse=True)
        grouped = torch.zeros(len(uniq), mt, **f64).index_add_(0, inv, zt)
        counts = torch.bincount(inv, minlength=len(uniq))
        for j, t in enumerate(uniq.tolist()):
            tok_sum[t] = tok_sum.get(t, torch.zeros(mt, **f64)) + grouped[j]
            tok_n[t] = tok_n.get(t, 0) + int(counts[j])
        vals, idx = zt.topk(min(n_show, len(zt)), dim=0)           # per latent, this batch's best tokens
        cand_v = torch.cat([top, vals.T], 1)
        cand_w = torch.cat([where, torch.stack([seq[idx], pos[idx]], -1).transpose(0, 1)], 1)
        best = cand_v.topk(n_show, dim=1).indices
        top = cand_v.gather(1, best)
        where = cand_w.gather(1, best[..., None].expand(-1, -1, 2))
    bar.close()
    mean_t, mean_n = st / n, sn / n
    cov = cross / n - torch.outer(mean_t, mean_n)
    sd_t = (st2 / n - mean_t ** 2).clamp_min(0).sqrt()
    sd_n = (sn2 / n - mean_n ** 2).clamp_min(0).sqrt()
    corr = cov / (torch.outer(sd_t, sd_n)).clamp_min(1e-12)
    dt = transferred.W_dec.detach().double()
    dn = native.W_dec.detach().double()
    dec = (dt / dt.norm(dim=1, keepdim=True).clamp_min(1e-12)) @ (dn / dn.norm(dim=1, keepdim=True).clamp_min(1e-12)).T
    # tokens seen fewer than 3 times are pooled into one group: a group of one token explains its own
    # variance, which would make every latent look token-determined on a small sample
    common = [t for t in tok_sum if tok_n[t] >= 3]
    rare_sum = sum((tok_sum[t] for t in tok_sum if tok_n[t] < 3), torch.zeros(mt, **f64))
    rare_n = sum(tok_n[t] for t in tok_sum if tok_n[t] < 3)
    eta_tok = _eta2(st, st2, torch.stack([tok_sum[t] for t in common] + [rare_sum]),
                    torch.tensor([tok_n[t] for t in common] + [rare_n], **f64), n)
    eta_pos = _eta2(st, st2, pos_sum, pos_n, n)
    kind = ["rare" if int(fires[i]) < min_fires else
            ("structural" if max(float(eta_tok[i]), float(eta_pos[i])) >= STRUCTURAL else "semantic")
            for i in range(mt)]
    latents = [{"latent": i, "fires": int(fires[i]), "decoder_cos": round(float(dec[i].max()), 4),
                "activation_corr": round(float(corr[i].max()), 4), "best_native": int(corr[i].argmax()),
                "eta2_token": round(float(eta_tok[i]), 4), "eta2_position": round(float(eta_pos[i]), 4),
                "kind": kind[i]} for i in range(mt)]
    live = sorted((x for x in latents if x["kind"] != "rare"), key=lambda x: -x["activation_corr"])

    def snippets(i: int) -> list[dict]:
        out = []
        for s in range(n_show):
            if top[i, s] <= 0:
                continue
            q, p = int(where[i, s, 0]), int(where[i, s, 1])
            ids_ = seqs[q]
            out.append({"activation": round(float(top[i, s]), 4),
                        "before": lm.tokenizer.decode(ids_[max(0, p - window):p].tolist()),
                        "token": lm.tokenizer.decode(ids_[p:p + 1].tolist()),
                        "after": lm.tokenizer.decode(ids_[p + 1:p + 1 + window].tolist())})
        return sorted(out, key=lambda x: -x["activation"])

    shown = live[:n_show] + live[-n_show:] if len(live) > 2 * n_show else live
    by_kind = {k: [x for x in latents if x["kind"] == k] for k in ("structural", "semantic", "rare")}

    def summary(xs: list[dict], key: str) -> dict | None:
        if not xs:
            return None
        v = torch.tensor([x[key] for x in xs], dtype=torch.float64)
        q = torch.quantile(v, torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64))
        return {"n": len(xs), "mean": round(float(v.mean()), 4), "p10": round(float(q[0]), 4),
                "median": round(float(q[1]), 4), "p90": round(float(q[2]), 4)}

    return {"tokens": n, "model": lm.name, "layer": transferred.meta.get("layer"), "latents": latents,
            "by_kind": {k: {"activation_corr": summary(v, "activation_corr"), "decoder_cos": summary(v, "decoder_cos")}
                        for k, v in by_kind.items()},
            "examples": [{**x, "snippets": snippets(x["latent"])} for x in shown], "structural_threshold": STRUCTURAL}
