"""Stitched next-token loss: how good a map is causally (the model-stitching paper's Table 1).

The target model runs with its residual stream at the map's target layer *replaced*, at every position but the
first (the attention sink, which the map was not fitted on and which only ever sees its own token), by the mapped
state ``A·h_S + p`` of the source model on the same tokens; the forward pass continues and its next-token
cross-entropy on held-out text is compared with the target's own, and its distribution with the target's own
(KL(own ‖ stitched)). With an inverse map also the reverse (target → source) and both round trips (source →
target → source on the source model, target → source → target on the target). The *mean ablation* — the layer
replaced by its mean state over the batch's tokens — is the floor a map that carried nothing would reach.

Every scored document is from the map's held-out split (the hash split the map was fitted without).

**Across tokenizers** (a map fitted with ``--align chars``) the recipient's state is replaced only at *aligned*
positions (both tokenizers end a token at that character: :mod:`lrt.harvest.aligned`) by the mapped state of the
donor's token ending there, and its next-token CE is scored there only, against its own and a mean ablation of the
same positions; no round trips. The share replaced is recorded: the unreplaced rest keeps the recipient's own
states, so the loss is slightly optimistic next to a one-tokenizer stitch.
"""

from __future__ import annotations

import warnings
from typing import Callable, Iterator

import torch
from tqdm.auto import tqdm

from ..errors import ConfigError, DimensionMismatchError, TokenizerMismatchError
from ..harvest.config import HarvestConfig
from ..data import packing
from ..data.corpus import sample_documents, split_of
from ..harvest.paired import MAP_SPLIT_SALT
from ..maps.affine import AffineMap
from ..models.hooks import hooks, register_layer_hook
from ..models.load import LoadedModel
from ..models.tokenizer_check import check_tokenizers, same_tokenizer
from .config import StitchConfig


def source_layers(m: AffineMap) -> list:
    """The map's source layers (several for a many-to-one map)."""
    return list(m.source_layer) if isinstance(m.source_layer, (list, tuple)) else [m.source_layer]


def check_stitch(source: LoadedModel, target: LoadedModel, up: AffineMap, down: AffineMap | None = None,
                 allow_other_models: bool = False) -> None:
    """The maps fit these models: model names (unless allowed otherwise), widths and layers; says which not."""
    for m, a, b in ((up, source, target), (down, target, source)):
        if m is None:
            continue
        if not allow_other_models and (m.source, m.target) != (a.name, b.name):
            raise DimensionMismatchError(f"the map {'up' if m is up else 'down'} was fitted from {m.source!r} to "
                                         f"{m.target!r} but the models given are {a.name!r} and {b.name!r}; pass the "
                                         "map's models (or allow other models)", option="source")
        layers = source_layers(m)
        for layer in layers:
            a.layer_index(layer)
        b.layer_index(m.target_layer)
        m.check_models(a.d_model * len(layers), b.d_model)
    if down is not None and len(source_layers(down)) != 1:
        raise ConfigError("the inverse map must start from one target layer")
    try:
        check_tokenizers(source.tokenizer, target.tokenizer, source.name, target.name)
    except TokenizerMismatchError as e:
        if all(paired_by(m) == "chars" for m in (up, down) if m is not None):
            return                            # across tokenizers: scored at aligned positions (module docstring)
        raise TokenizerMismatchError("the stitched loss replaces the target's state token by token, so it needs one "
                                     "tokenizer, or a map fitted across tokenizers (lrt fit-map --align chars), "
                                     f"which it scores at aligned positions ({e})") from None


def paired_by(m: AffineMap) -> str | None:
    """How the harvest a map was fitted on paired positions: "tokens" or "chars" (None for older maps)."""
    return (m.meta.get("tokenizers") or {}).get("paired_by")


def _heldout_docs(cfg: StitchConfig, heldout_percent: float):
    """The evaluation corpus and the test "this document is in the map's held-out split"."""
    if not heldout_percent:
        raise ConfigError("the map has no held-out split (held-out share 0): every document may have been fitted "
                          "on; score another corpus or refit the map with a held-out share", option="eval_split_percent")
    held = lambda doc: split_of(doc, heldout_percent, salt=MAP_SPLIT_SALT) == "heldout"  # noqa: E731
    return HarvestConfig(corpus=cfg.eval_corpus).corpus, held


def heldout_batches(tokenizer, cfg: StitchConfig, heldout_percent: float
                    ) -> Iterator[tuple[torch.Tensor, torch.Tensor]]:
    """Packed sequences of the map's held-out split only (documents of the training split are skipped
    untokenized), ``cfg.eval_tokens`` tokens in all."""
    corpus, held = _heldout_docs(cfg, heldout_percent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")        # a short corpus is reported by the caller, in scored tokens
        for ids, mask, _ in packing.pack_sequences(sample_documents(corpus, 0), tokenizer, cfg.eval_context,
                                                   cfg.eval_batch_size, cfg.eval_tokens, held, 1.0,
                                                   max_doc_tokens=1024):
            yield ids, mask


def aligned_heldout_batches(source_tok, target_tok, cfg: StitchConfig, heldout_percent: float) -> Iterator[tuple]:
    """:func:`lrt.harvest.aligned.aligned_batches` of the map's held-out split only: ``(source ids, mask, target
    ids, mask, source positions, target positions)``, ``cfg.eval_tokens`` source tokens in all."""
    from ..harvest.aligned import aligned_batches

    corpus, held = _heldout_docs(cfg, heldout_percent)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for si, sm, ti, tm, ps, pt, _ in aligned_batches(sample_documents(corpus, 0), source_tok, target_tok,
                                                         cfg.eval_context, cfg.eval_batch_size, cfg.eval_tokens,
                                                         held, 1.0, max_doc_tokens=1024):
            yield si, sm, ti, tm, ps, pt


def replace_at(pos: tuple[torch.Tensor, torch.Tensor], values: torch.Tensor) -> Callable:
    """A hook replacing a layer's output at the ``(row, column)`` positions ``pos`` only, by ``values [n, d]``."""
    def fn(h):
        new = h.clone()
        new[pos[0].to(h.device), pos[1].to(h.device)] = values.to(h.device, h.dtype)
        return new
    return fn


def scored_at(pos: tuple[torch.Tensor, torch.Tensor], mask: torch.Tensor) -> torch.Tensor:
    """``[B, T-1]`` bool: the predictions made at ``pos`` whose next token is real (not padding)."""
    valid = torch.zeros(mask.shape[0], mask.shape[1] - 1, dtype=torch.bool)
    keep = pos[1] < mask.shape[1] - 1
    r, c = pos[0][keep], pos[1][keep]
    valid[r, c] = mask[r, c + 1].bool()
    return valid


def _stitch_batch_aligned(jobs: list, source: LoadedModel, target: LoadedModel, batch: tuple,
                          read_s: list[int], read_t: list[int]) -> tuple[int, int]:
    """Score one aligned held-out batch for every job; returns (target positions scored, target tokens)."""
    si, sm, ti, tm, ps, pt = batch
    logit_s, hs = forward_with(source, si, sm, read=read_s)
    logit_t, ht = forward_with(target, ti, tm, read=read_t)
    vt, vs = scored_at(pt, tm), scored_at(ps, sm)
    ablated = {}
    for up, down, ups, lt, ld, _, sc in jobs:
        sc.add("target", logit_t, ti, vt)
        mapped = up.transform(torch.cat([hs[x][ps[0], ps[1]].float() for x in ups], -1))
        sc.add("source→target", forward_with(target, ti, tm, put={lt: replace_at(pt, mapped)})[0], ti, vt, logit_t)
        if lt not in ablated:
            mean = ht[lt][tm.bool().to(ht[lt].device)].float().mean(0).expand(len(pt[0]), -1)
            ablated[lt] = forward_with(target, ti, tm, put={lt: replace_at(pt, mean)})[0]
        sc.add("target, mean ablation", ablated[lt], ti, vt, logit_t)
        if down is not None:
            sc.add("source", logit_s, si, vs)
            back = down.transform(ht[ld[0]][pt[0], pt[1]].float())
            sc.add("target→source", forward_with(source, si, sm, put={ld[1]: replace_at(ps, back)})[0], si, vs,
                   logit_s)
    return int(vt.sum()), int(tm.sum())


@torch.no_grad()
def forward_with(lm: LoadedModel, ids, mask, read=(), put: dict[int, Callable] | None = None):
    """``(logits float32, {layer: state})``: a full forward pass reading the layers ``read`` and replacing the
    output of each layer in ``put`` by its hook's result."""
    captured: dict[int, torch.Tensor] = {}
    handles = [register_layer_hook(lm, layer, lambda h, layer=layer: captured.__setitem__(layer, h.detach()))
               for layer in read]
    handles += [register_layer_hook(lm, layer, fn) for layer, fn in (put or {}).items()]
    with hooks(handles):
        out = lm.model(input_ids=ids.to(lm.device), attention_mask=mask.to(lm.device), use_cache=False)
    return out.logits.float(), captured


def replace_with(states: torch.Tensor) -> Callable:
    """A hook replacing a layer's output by ``states`` at every position but the first."""
    def fn(h):
        new = states.to(h.device, h.dtype).clone()
        new[:, 0] = h[:, 0]
        return new
    return fn


class Scores:
    """Running next-token NLL (and KL to a reference distribution) per variant, summed over its scored tokens
    (``count``: how many; one model's variants share them, the two models' differ across tokenizers)."""

    def __init__(self):
        self.nll: dict[str, float] = {}
        self.kl: dict[str, float] = {}
        self.count: dict[str, int] = {}

    def add(self, name: str, logits: torch.Tensor, ids: torch.Tensor, valid: torch.Tensor,
            own: torch.Tensor | None = None) -> None:
        logp = torch.log_softmax(logits[:, :-1], -1)
        nll = -logp.gather(-1, ids[:, 1:, None].to(logp.device))[..., 0]
        self.nll[name] = self.nll.get(name, 0.0) + float(nll[valid].double().sum())
        self.count[name] = self.count.get(name, 0) + int(valid.sum())
        if own is not None:
            lo = torch.log_softmax(own[:, :-1], -1)
            kl = (lo.exp() * (lo - logp)).sum(-1)
            self.kl[name] = self.kl.get(name, 0.0) + float(kl[valid].double().sum())


def stitch(source: LoadedModel, target: LoadedModel, up: AffineMap, down: AffineMap | None = None,
           cfg: StitchConfig | None = None, allow_other_models: bool = False) -> dict:
    """Next-token cross-entropy (nats/token) of the source, the target, the stitched models and the round trips
    on held-out text, with KL to the recipient's own distribution and the relative increase over its own CE."""
    return stitch_many(source, target, [(up, down)], cfg, allow_other_models)[0]


def _stitch_batch(jobs: list, source: LoadedModel, target: LoadedModel, ids: torch.Tensor, mask: torch.Tensor,
                  read_s: list[int], read_t: list[int]) -> int:
    """Score one held-out batch for every job (map and inverse); returns the positions scored."""
    valid = (mask[:, 1:] & mask[:, :-1]).bool()
    valid[:, 0] = False                       # position 0 keeps its own state: its prediction is unchanged
    logit_s, hs = forward_with(source, ids, mask, read=read_s)
    logit_t, ht = forward_with(target, ids, mask, read=read_t)
    ablated = {}
    for up, down, ups, lt, ld, trip, sc in jobs:
        sc.add("source", logit_s, ids, valid)
        sc.add("target", logit_t, ids, valid)
        mapped = up.transform(torch.cat([hs[x].float() for x in ups], -1))
        sc.add("source→target", forward_with(target, ids, mask, put={lt: replace_with(mapped)})[0], ids, valid, logit_t)
        if lt not in ablated:
            mean = ht[lt][mask.bool().to(ht[lt].device)].float().mean(0).expand_as(ht[lt])
            ablated[lt] = forward_with(target, ids, mask, put={lt: replace_with(mean)})[0]
        sc.add("target, mean ablation", ablated[lt], ids, valid, logit_t)
        if down is not None:
            back = down.transform(ht[ld[0]].float())
            sc.add("target→source", forward_with(source, ids, mask, put={ld[1]: replace_with(back)})[0], ids, valid, logit_s)
        if trip:
            sc.add("source→target→source", forward_with(source, ids, mask, put={ups[0]: replace_with(down.transform(mapped))}
                                                    )[0], ids, valid, logit_s)
            there = up.transform(down.transform(ht[lt].float()))
            sc.add("target→source→target", forward_with(target, ids, mask, put={lt: replace_with(there)})[0], ids, valid,
                   logit_t)
    return int(valid.sum())


def stitch_many(source: LoadedModel, target: LoadedModel, maps: list[tuple[AffineMap, AffineMap | None]],
                cfg: StitchConfig | None = None, allow_other_models: bool = False) -> list[dict]:
    """:func:`stitch` for several ``(up, down)`` map pairs of one model pair on the same held-out batches: each
    batch's own forward passes (and each target layer's mean ablation) run once for all of them."""
    cfg = cfg or StitchConfig()
    for up, down in maps:
        check_stitch(source, target, up, down, allow_other_models)
    hps = {cfg.eval_split_percent if cfg.eval_split_percent is not None else
           (up.meta.get("harvest") or {}).get("heldout_percent", 10.0) for up, _ in maps}
    if len(hps) != 1:
        raise ConfigError(f"these maps were fitted with different held-out shares {sorted(hps)}; stitch them "
                          "separately", option="eval_split_percent")
    hp = hps.pop()
    aligned = (any(paired_by(up) == "chars" for up, _ in maps)
               and not same_tokenizer(source.tokenizer, target.tokenizer))
    jobs = []
    for up, down in maps:
        ups = [source.layer_index(x) for x in source_layers(up)]
        lt = target.layer_index(up.target_layer)
        ld = (target.layer_index(down.source_layer), source.layer_index(down.target_layer)) if down else None
        trip = ld == (lt, ups[0]) and len(ups) == 1 and not aligned     # no round trips across tokenizers
        jobs.append((up, down, ups, lt, ld, trip, Scores()))
    read_s = sorted({x for j in jobs for x in j[2] + ([j[4][1]] if j[4] else [])})
    read_t = sorted({x for j in jobs for x in [j[3]] + ([j[4][0]] if j[4] else [])})
    n, target_tokens = 0, 0
    with tqdm(total=cfg.eval_tokens, unit="tok", unit_scale=True, desc="stitch", disable=not cfg.progress) as bar:
        if aligned:
            for batch in aligned_heldout_batches(source.tokenizer, target.tokenizer, cfg, hp):
                k, t = _stitch_batch_aligned(jobs, source, target, batch, read_s, read_t)
                n, target_tokens = n + k, target_tokens + t
                bar.update(min(int(batch[1].sum()), max(0, bar.total - bar.n)))
        else:
            for ids, mask in heldout_batches(source.tokenizer, cfg, hp):
                n += _stitch_batch(jobs, source, target, ids, mask, read_s, read_t)
                bar.update(min(int(mask.sum()), max(0, bar.total - bar.n)))
        bar.total = bar.n             # the held-out text may hold fewer tokens than asked for: end the bar at 100%
        bar.refresh()
    if n == 0:
        raise ConfigError(f"no held-out tokens to score in {cfg.eval_corpus!r}; give a larger corpus",
                          option="eval_corpus")
    if n < 0.9 * cfg.eval_tokens and not aligned:
        warnings.warn(f"the held-out split of {cfg.eval_corpus or 'the shipped text'} held only {n:,} tokens to "
                      f"score, fewer than the {cfg.eval_tokens:,} asked for", stacklevel=2)
    out = [_summary(sc, n, up, down, trip, source, target, hp) for up, down, _, _, _, trip, sc in jobs]
    for r in out:
        r["positions"] = "aligned" if aligned else "all"
        if aligned:
            r["replaced_share_of_target_tokens"] = round(n / max(1, target_tokens), 4)
    return out


OWN = {"source→target": "target", "target, mean ablation": "target", "target→source": "source",
       "source→target→source": "source", "target→source→target": "target"}


def _summary(sc: Scores, n: int, up: AffineMap, down, trip: bool, source, target, hp: float) -> dict:
    ce = {k: round(v / max(1, sc.count[k]), 6) for k, v in sc.nll.items()}
    rel = {k: round(ce[k] / ce[o] - 1, 6) for k, o in OWN.items() if k in ce}
    return {"tokens": n, "ce": ce, "kl": {k: round(v / max(1, sc.count[k]), 6) for k, v in sc.kl.items()},
            "relative_increase": rel, "recipient": {k: OWN[k] for k in rel},
            "source": source.name, "target": target.name, "source_layer": up.source_layer,
            "target_layer": up.target_layer, "heldout_percent": hp, "round_trips": trip,
            "inverse": down is not None}
