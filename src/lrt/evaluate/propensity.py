"""Propensities under steering, for whole grids at once.

For item ``i``, propensity = log p(positive) − log p(negative) of the next token after ``ids`` (for sets of
words: log Σ p over each set); ``m_LD`` is the paper's logit difference (mean logit of the positive set −
mean logit of the negative set; for single tokens it equals the propensity). Every (vector, α, item) row runs
in padded batches with a per-row steering delta, not a Python loop over α.

Two savings make the grid cheap: rows are sorted by length (little padding) and only the logits of the last
positions are computed (``logits_to_keep``); and, with ``share_prefix``, the states up to the steered layer —
identical for every (vector, α) of an item — are computed once per item: the steered rows skip blocks
0..L and start from the cached state plus their delta.
"""

from __future__ import annotations

import contextlib
import inspect
import warnings

import torch
from torch import nn
from tqdm.auto import tqdm

from ..data.contrasts import Item
from ..data.packing import pad_right
from ..harvest.capture import run_with_capture
from ..models.hooks import hooks
from ..models.load import LoadedModel
from ..steering.apply import steering


def _pad(items: list[Item], idx: list[int], pad: int) -> tuple[torch.Tensor, torch.Tensor]:
    return pad_right([items[i].ids for i in idx], pad)


class _Skip(nn.Module):
    """Stands in for a skipped block: returns its input (the last one returns the cached, steered states).

    Attributes the model's forward reads from its blocks (``attention_type``, ``layer_idx``, ...) are the
    original block's. The original module is only set aside, never modified, so hooks that wrap its
    ``forward`` (accelerate's device hooks under ``device_map="auto"``) stay intact.
    """

    def __init__(self, original: nn.Module, states: torch.Tensor | None, tuple_out: bool):
        super().__init__()
        self.__dict__["_original"] = original      # not a submodule: no parameters, no state_dict entry
        self.states, self.tuple_out = states, tuple_out

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.__dict__["_original"], name)

    def forward(self, hidden_states, *args, **kwargs):
        out = hidden_states if self.states is None else self.states.to(hidden_states.device)
        return (out,) if self.tuple_out else out


@contextlib.contextmanager
def _start_at(lm: LoadedModel, layer: int, states: torch.Tensor, tuple_out: bool):
    """Skip blocks 0..layer; block ``layer`` outputs ``states`` (the cached, steered residual stream).

    The skipped blocks are swapped out of the block list for the call and put back after, exceptions included.
    """
    originals = [lm.blocks[i] for i in range(layer + 1)]
    try:
        for i, b in enumerate(originals):
            lm.blocks[i] = _Skip(b, states if i == layer else None, tuple_out)
        yield
    finally:
        for i, b in enumerate(originals):
            lm.blocks[i] = b


class _Runner:
    def __init__(self, lm: LoadedModel, layer: int, items: list[Item], share_prefix: bool):
        self.lm, self.layer, self.items = lm, layer, items
        self.pad = lm.tokenizer.pad_token_id or 0
        self.keep_ok = "logits_to_keep" in inspect.signature(lm.model.forward).parameters
        self.share = share_prefix and layer >= 0
        self.cache: dict[int, torch.Tensor] = {}
        self.checked = False

    def _prefix(self, idx: list[int]) -> None:
        todo = sorted({i for i in idx if i not in self.cache})
        if not todo:
            return
        ids, mask = _pad(self.items, todo, self.pad)
        out_type = {}

        def probe(module, args, output):   # returns None: a hook's return value would replace the output
            out_type.setdefault("t", type(output))

        h = self.lm.blocks[self.layer].register_forward_hook(probe)
        with hooks([h]):
            hs = run_with_capture(self.lm, [self.layer], ids.to(self.lm.device), mask.to(self.lm.device))[self.layer]
        self.tuple_out = out_type.get("t") is tuple
        for j, i in enumerate(todo):
            self.cache[i] = hs[j, :len(self.items[i].ids)]

    def logits(self, idx: list[int], delta: torch.Tensor) -> torch.Tensor:
        """Last-position logits [B, V] of items ``idx`` steered by per-row ``delta`` [B, d]."""
        ids, mask = _pad(self.items, idx, self.pad)
        lengths = mask.sum(1)
        kw = {}
        if self.keep_ok:
            keep = int(ids.shape[1] - lengths.min() + 1)
            kw["logits_to_keep"] = keep
        dev = self.lm.device
        if self.share:
            self._prefix(idx)
            T, d = ids.shape[1], self.lm.d_model
            states = torch.zeros(len(idx), T, d, dtype=next(iter(self.cache.values())).dtype, device=dev)
            for j, i in enumerate(idx):
                states[j, :len(self.items[i].ids)] = self.cache[i]
            states = states + delta.to(dev, states.dtype)[:, None, :]
            with torch.no_grad(), _start_at(self.lm, self.layer, states, self.tuple_out):
                out = self.lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False, **kw).logits
            if not self.checked:     # once: the shortcut must reproduce a plain steered pass (real positions)
                self.checked = True
                with torch.no_grad(), steering(self.lm, self.layer, delta[:1]):
                    ref = self.lm.model(input_ids=ids[:1].to(dev), attention_mask=mask[:1].to(dev), use_cache=False,
                                        **kw).logits
                p0 = int(lengths[0]) - 1 - (ids.shape[1] - ref.shape[1])
                a, b = out[0, p0], ref[0, p0]
                if not torch.allclose(a, b, rtol=1e-3, atol=1e-3 * float(b.abs().max())):
                    warnings.warn(f"{self.lm.name}: starting the forward pass at layer {self.layer} does not reproduce"
                                  " the full pass for this architecture; computing every row in full", stacklevel=3)
                    self.share = False
                    return self.logits(idx, delta)
        else:
            with torch.no_grad(), steering(self.lm, self.layer, delta):
                out = self.lm.model(input_ids=ids.to(dev), attention_mask=mask.to(dev), use_cache=False, **kw).logits
        pos = lengths.to(out.device) - 1 - (ids.shape[1] - out.shape[1])
        return out[torch.arange(len(idx), device=out.device), pos].float().cpu()


def _score(logits: torch.Tensor, logprobs: torch.Tensor, item: Item) -> tuple[torch.Tensor, torch.Tensor]:
    """(propensity, m_LD) of one item from its next-token logits and log-probabilities (``[V]``, or ``[R, V]`` for
    R rows of the same item)."""
    prop = torch.logsumexp(logprobs[..., item.positive], -1) - torch.logsumexp(logprobs[..., item.negative], -1)
    return prop, logits[..., item.positive].mean(-1) - logits[..., item.negative].mean(-1)


def _forward_rows(runner: _Runner, rows: list[tuple[int, torch.Tensor | None]], batch_size: int,
                  progress: bool = False, desc: str = "α grid") -> tuple[torch.Tensor, torch.Tensor]:
    """rows: (item index, delta or None). Returns (propensity [R], m_LD [R])."""
    items = runner.items
    prop, mld = torch.empty(len(rows)), torch.empty(len(rows))
    order = sorted(range(len(rows)), key=lambda r: len(items[rows[r][0]].ids))   # similar lengths together
    d = runner.lm.d_model
    bar = tqdm(total=len(rows), unit="row", desc=desc, disable=not progress)
    for s in range(0, len(order), batch_size):
        chunk = order[s:s + batch_size]
        delta = torch.zeros(len(chunk), d)
        for j, r in enumerate(chunk):
            if rows[r][1] is not None:
                delta[j] = rows[r][1]
        last = runner.logits([rows[r][0] for r in chunk], delta)
        lp = torch.log_softmax(last, -1)
        for j, r in enumerate(chunk):
            prop[r], mld[r] = _score(last[j], lp[j], items[rows[r][0]])
        bar.update(len(chunk))
    bar.close()
    return prop, mld


def propensity_grid(lm: LoadedModel, layer: int, items: list[Item], directions: torch.Tensor,
                    alphas: list[float], median_norm: float, batch_size: int = 64, share_prefix: bool = True,
                    progress: bool = False, desc: str = "α grid"
                    ) -> tuple[torch.Tensor, torch.Tensor]:
    """Propensities ``[V, A, N]`` (and m_LD) for unit ``directions [V, d]`` at ``α · median_norm``.

    The α = 0 rows are shared by all vectors and run once (and not at all when 0 is not in ``alphas``).
    """
    V, A, N = len(directions), len(alphas), len(items)
    rows, where = [], {}
    for i in range(N if 0 in alphas else 0):
        where[(None, i)] = len(rows)
        rows.append((i, None))
    for v in range(V):
        for a, alpha in enumerate(alphas):
            if alpha != 0:
                for i in range(N):
                    where[(v, a, i)] = len(rows)
                    rows.append((i, alpha * median_norm * directions[v]))
    prop, mld = _forward_rows(_Runner(lm, layer, items, share_prefix), rows, batch_size, progress, desc)
    out_p, out_m = torch.empty(V, A, N), torch.empty(V, A, N)
    for v in range(V):
        for a, alpha in enumerate(alphas):
            for i in range(N):
                r = where[(None, i)] if alpha == 0 else where[(v, a, i)]
                out_p[v, a, i], out_m[v, a, i] = prop[r], mld[r]
    return out_p, out_m
