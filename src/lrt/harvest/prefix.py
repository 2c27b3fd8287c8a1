"""Shared prefixes: the states of one-token continuations of a prompt, with the prompt computed once.

CAA reads ``h_L(answer | prompt)`` for two answers to the same prompt. Run as two full sequences, every prompt
token is computed twice. Here each prompt runs once with the KV cache (stopping after layer ``L``: the cache is
only needed up to ``L``), and the ``K`` answers run as one-token continuations of that cache, all in one batch
(the cache repeated ``K`` times). Prompts of different lengths share a batch (sorted by length, so little padding):
they are right-padded, the pads masked out, and each answer continues its own prompt at its own position
(explicit ``position_ids``; the attention mask skips the pads between the prompt and the answer) — so a GPU sees
full batches, not the batch-1 groups of equal length that real A/B sets mostly give. ``pad=False`` batches only
prompts of one length (nothing padded).

The result carries, per sequence ``prompt + answer``, the norms of the positions :func:`~.capture.keep_mask`
keeps (1..P: the prompt tokens after the first, then the answer), so a caller that fed a ``NormTracker`` from
full sequences gets the same multiset of norms (each prompt token counted once per answer).

The first batch is checked once against full passes (as ``evaluate.propensity`` checks its shortcut); where the
cache path fails or does not reproduce them, every sequence runs in full instead, with a warning.
"""

from __future__ import annotations

import warnings
from collections import defaultdict
from dataclasses import dataclass

import torch

from ..errors import DatasetError
from ..models.hooks import StopForward, hooks, register_layer_hook
from ..models.kv import cache_arg
from ..models.load import LoadedModel
from .capture import capture_batches, keep_mask, run_with_capture


@dataclass
class ContinuationStates:
    states: torch.Tensor
    """``[N, K, d]`` float32 on the CPU: layer ``L``'s state at answer ``k`` of prompt ``i``."""
    kept_norms: list[list[torch.Tensor]]
    """``[K][N]``: norms (float32) of the kept positions of sequence ``prompt_i + answer_k`` (positions 1..P)."""
    shared: bool
    """Whether the shared-prefix path computed them (False: full sequences)."""


def length_groups(lengths: list[int], batch_size: int, pad: bool = False) -> list[list[int]]:
    """Indices in batches of at most ``batch_size``: of one length each, or (``pad``) of similar lengths (longest
    first either way)."""
    if pad:
        order = sorted(range(len(lengths)), key=lambda i: (-lengths[i], i))
        return [order[s:s + batch_size] for s in range(0, len(order), batch_size)]
    by_len: dict[int, list[int]] = defaultdict(list)
    for i, n in enumerate(lengths):
        by_len[n].append(i)
    return [idx[s:s + batch_size] for n in sorted(by_len, reverse=True) for idx in [by_len[n]]
            for s in range(0, len(idx), batch_size)]


@torch.no_grad()
def _forward(lm: LoadedModel, layer: int, ids: torch.Tensor, cache, mask: torch.Tensor,
             positions: torch.Tensor) -> torch.Tensor:
    """Layer ``layer``'s output for ``ids`` continuing ``cache`` (updated in place); stops after that layer."""
    out = {}

    def grab(h):
        out["h"] = h.detach()
        raise StopForward

    with hooks([register_layer_hook(lm, layer, grab)]):
        try:
            lm.model(input_ids=ids, attention_mask=mask, position_ids=positions, use_cache=True,
                     **{cache_arg(lm.model): cache})
        except StopForward:
            pass
    return out["h"]


def _shared_batch(lm: LoadedModel, layer: int, prompts: list[list[int]], answers: list[list[int]], idx: list[int]
                  ) -> tuple[torch.Tensor, torch.Tensor]:
    """(prompt states [B, P, d] — right-padded —, answer states [B, K, d]) of prompts ``idx``, on the device."""
    from transformers import DynamicCache

    dev = lm.device
    lengths = torch.tensor([len(prompts[i]) for i in idx], device=dev)
    P = int(lengths.max())
    pad = lm.tokenizer.pad_token_id or 0
    ids = torch.tensor([prompts[i] + [pad] * (P - len(prompts[i])) for i in idx], device=dev)
    mask = (torch.arange(P, device=dev)[None] < lengths[:, None]).long()
    cache = DynamicCache(config=lm.model.config)
    h = _forward(lm, layer, ids, cache, mask, torch.arange(P, device=dev)[None].expand(len(idx), -1))
    K = len(answers[idx[0]])
    cache.batch_repeat_interleave(K)               # rows: prompt 0 × K, prompt 1 × K, ...
    nxt = torch.tensor([a for i in idx for a in answers[i]], device=dev)[:, None]
    mask_k = torch.cat([mask.repeat_interleave(K, 0), torch.ones(len(nxt), 1, dtype=torch.long, device=dev)], 1)
    a = _forward(lm, layer, nxt, cache, mask_k, lengths.repeat_interleave(K)[:, None])[:, -1]
    return h, a.reshape(len(idx), K, -1)


def _norms(h: torch.Tensor) -> torch.Tensor:
    return h.float().cpu().norm(dim=-1)


def _matches(lm: LoadedModel, layer: int, prompt: list[int], answers: list[int], h: torch.Tensor,
             a: torch.Tensor) -> bool:
    """Whether one prompt's shared-prefix states equal full passes of ``prompt + answer``."""
    ids = torch.tensor([prompt + [t] for t in answers], device=lm.device)
    ref = run_with_capture(lm, [layer], ids)[layer].float()
    got = torch.cat([h.float()[None].expand(len(answers), -1, -1), a.float()[:, None]], 1)
    tol = 1e-3 if h.dtype in (torch.float32, torch.float64) else 3e-2     # a wrong position is off by far more
    return bool(torch.allclose(got, ref, rtol=tol, atol=tol * float(ref.abs().max())))


def _full(lm: LoadedModel, layer: int, prompts: list[list[int]], answers: list[list[int]], K: int,
          batch_size: int) -> ContinuationStates:
    """Every ``prompt + answer`` as its own sequence (answer k of every prompt, then answer k + 1)."""
    N = len(prompts)
    states = torch.empty(N, K, lm.d_model)
    norms: list[list[torch.Tensor]] = [[] for _ in range(K)]
    for k in range(K):
        seqs = [p + [a[k]] for p, a in zip(prompts, answers)]
        row = 0
        for hs, mask in capture_batches(lm, seqs, [layer], batch_size):
            h, last = hs[layer], mask.sum(1) - 1
            states[row:row + len(h), k] = h[torch.arange(len(h)), last]
            keep = keep_mask(mask)
            norms[k].extend(h[j][keep[j]].norm(dim=-1) for j in range(len(h)))
            row += len(h)
    return ContinuationStates(states, norms, shared=False)


def continuation_states(lm: LoadedModel, layer: int, prompts: list[list[int]], answers: list[list[int]],
                        batch_size: int = 16, share_prefix: bool = True, pad: bool = True,
                        desc: str | None = None) -> ContinuationStates:
    """Layer ``layer``'s state at each one-token answer ``answers[i][k]`` after ``prompts[i]``.

    Every prompt has the same number ``K`` of answers. With ``share_prefix`` each prompt is computed once (KV
    cache, ``batch_size`` prompts a batch: of similar lengths, padded, or with ``pad=False`` of one length);
    without it, or where that path does not reproduce full passes (checked on the first batch, its longest and
    its shortest prompt), every ``prompt + answer`` runs as a sequence of its own. ``desc``: a progress bar over
    the prompts, so named (none by default).
    """
    from tqdm.auto import tqdm

    K = len(answers[0]) if answers else 0
    if len(answers) != len(prompts) or any(len(a) != K for a in answers):
        raise DatasetError("every prompt needs one answer list, all of the same length (one token per answer)")
    if not share_prefix or layer < 0 or not prompts or not all(prompts):   # "embed": no block to share
        return _full(lm, layer, prompts, answers, K, batch_size)
    N = len(prompts)
    states = torch.empty(N, K, lm.d_model)
    norms: list[list[torch.Tensor | None]] = [[None] * N for _ in range(K)]
    bar = tqdm(total=N, desc=desc, unit="prompt", disable=desc is None, leave=False)
    for b, idx in enumerate(length_groups([len(p) for p in prompts], batch_size, pad)):
        try:
            h, a = _shared_batch(lm, layer, prompts, answers, idx)
            ok = b > 0 or all(_matches(lm, layer, prompts[idx[j]], answers[idx[j]], h[j, :len(prompts[idx[j]])],
                                       a[j]) for j in {0, len(idx) - 1})      # checked once: longest, shortest
            why = "" if ok else "does not reproduce a full pass"
        except (TypeError, ValueError, AttributeError, KeyError, NotImplementedError, RuntimeError) as e:
            if b > 0:
                raise
            why = f"fails ({type(e).__name__}: {e})"
        if why:
            bar.close()
            warnings.warn(f"{lm.name}: the shared-prefix (KV cache) path at layer {layer} {why} for this"
                          " architecture; computing every prompt + answer in full", stacklevel=3)
            return _full(lm, layer, prompts, answers, K, batch_size)
        pn, an = _norms(h[:, 1:]), _norms(a)         # keep_mask: position 0 of each prompt is left out
        states[idx] = a.float().cpu()
        for j, i in enumerate(idx):
            for k in range(K):
                norms[k][i] = torch.cat([pn[j, :len(prompts[i]) - 1], an[j, k:k + 1]])
        bar.update(len(idx))
    bar.close()
    return ContinuationStates(states, norms, shared=True)
