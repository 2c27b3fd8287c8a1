"""Train a TopK SAE on activations streamed from a model (through the one capture), with FLOPs counted.

Recipe (both documented in :class:`~lrt.sae.config.SAETrainConfig`): tied initialisation (decoder rows random
unit vectors, encoder their transpose), ``b_dec`` at the mean of the first rows, Adam on the batch FVU, and after
every step the decoder rows put back to unit norm, the gradient component parallel to each row removed first
(as sparsify does). The step is sparse where TopK allows: the encoder's backward and the decoder touch only the
k selected latents of a row (``encode_topk`` / ``decode_topk``). Rows pass through a seeded shuffle buffer. Every ``eval_every`` steps a metric row: held-out
FVU and L0 (on rows of the harvest's held-out documents), the dead-latent fraction over the last
``dead_tokens`` training tokens, tokens seen, and FLOPs — ``torch.utils.flop_counter.FlopCounterMode`` on the first
step (the dense encoder product), plus the sparse gathers counted analytically (10·batch·k·d), times the steps.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path

import torch
from torch import nn
from torch.utils.flop_counter import FlopCounterMode
from tqdm.auto import tqdm

from .. import distributed
from ..errors import ConfigError, DistributedError
from ..harvest.config import HarvestConfig
from ..harvest.paired import read_ahead_heldout, stream_rows
from ..models.layers import LayerSpec, layer_name
from ..models.load import LoadedModel
from .config import SAETrainConfig
from .model import SparseAutoencoder
from .transfer import unit_decoder_copy


@dataclass
class TrainResult:
    sae: SparseAutoencoder
    history: list[dict] = field(default_factory=list)
    flops_per_step: int = 0
    steps: int = 0
    tokens: int = 0
    seconds: float = 0.0


def init_sae(d_in: int, n: int, k: int, mean: torch.Tensor, seed: int, meta: dict | None = None) -> SparseAutoencoder:
    """Tied initialisation: random unit decoder rows, the encoder their transpose, ``b_dec`` = the data mean."""
    g = torch.Generator().manual_seed(seed)
    W = torch.randn(n, d_in, generator=g)
    W /= W.norm(dim=1, keepdim=True)
    sae = SparseAutoencoder(d_in, n, "topk", k, True, meta)
    sae.W_dec.data, sae.W_enc.data, sae.b_dec.data = W.clone(), W.T.clone(), mean.float().clone()
    return sae


class _Trainer:
    def __init__(self, cfg: SAETrainConfig, d_in: int, meta: dict):
        self.cfg, self.d_in, self.meta = cfg, d_in, meta
        self.n = cfg.n_latents(d_in)
        self.g = torch.Generator().manual_seed(cfg.seed)
        self.sae: SparseAutoencoder | None = None
        self.opt = None
        self.step_no, self.tokens = 0, 0
        self.last_fired = torch.zeros(self.n, dtype=torch.long)
        self.flops_per_step = 0
        self.extra_flops = 0
        self.history: list[dict] = []
        self.eval_x: torch.Tensor | None = None
        self.t0 = time.time()
        self.lr = cfg.learning_rate(self.n)
        self.world = distributed.world()
        self.probe = None

    def start(self, rows: torch.Tensor, init: SparseAutoencoder | None = None) -> None:
        if init is not None:
            self.sae = unit_decoder_copy(init, self.meta)
        else:
            mean = rows.double().mean(0) if len(rows) else torch.zeros(self.d_in, dtype=torch.float64)
            self.sae = init_sae(self.d_in, self.n, self.cfg.k, mean, self.cfg.seed, self.meta)
        distributed.broadcast_tensors([p.data for p in self.sae.parameters()])   # DDP: rank 0's start everywhere
        self.opt = self.new_optimizer()

    def new_optimizer(self) -> torch.optim.Optimizer:
        """Adam on the SAE's parameters: the fused kernel where the device has one (CPU and CUDA: one pass over the
        parameters instead of one per operation, 3× faster here), else the default."""
        params = list(self.sae.parameters())
        fused = all(p.device.type in ("cpu", "cuda") and p.dtype in (torch.float32, torch.float64) for p in params)
        return torch.optim.Adam(params, lr=self.lr, fused=fused or None)

    def step(self, x: torch.Tensor) -> float:
        if self.cfg.recipe == "sparsify" and self.step_no < self.cfg.warmup_steps:
            for group in self.opt.param_groups:
                group["lr"] = self.lr * (self.step_no + 1) / self.cfg.warmup_steps
        sae = self.sae
        vals, idx = sae.encode_topk(x)
        e = x - sae.decode_topk(vals, idx)
        total = (x - x.mean(0)).pow(2).sum().clamp_min(1e-12)
        loss = e.pow(2).sum() / total
        alpha = self.cfg.auxk()
        dead = (self.tokens - self.last_fired > self.cfg.dead_tokens) if self.tokens >= self.cfg.dead_tokens else None
        if alpha and dead is not None and dead.any():
            loss = loss + alpha * self.auxk_loss(x, e, total, dead)
            # its dense pre-activation product and the k_aux-sparse decoder with its gradients, counted as the
            # main step's are (the first step, which FlopCounterMode measures, never has dead latents)
            k_aux = min(x.shape[1] // 2, int(dead.sum()))
            self.extra_flops += 2 * x.shape[0] * x.shape[1] * self.n + 6 * x.shape[0] * k_aux * x.shape[1]
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(sae.parameters())      # DDP: every rank takes the same step
        sae.remove_gradient_parallel_to_decoder_directions()
        self.opt.step()
        sae.set_decoder_norm_to_unit_norm()
        self.step_no += 1
        self.tokens += len(x) * self.world
        self.last_fired.index_fill_(0, idx[vals.detach() > 0], self.tokens)
        distributed.max_tensor(self.last_fired)                # a latent is alive if it fired on any rank
        return float(loss.detach())

    def auxk_loss(self, x: torch.Tensor, e: torch.Tensor, total: torch.Tensor, dead: torch.Tensor) -> torch.Tensor:
        """AuxK (Gao et al. 2024, as sparsify): the dead latents' top-k_aux pre-activations (k_aux = d/2) reconstruct
        the main reconstruction's error, so dead latents get gradient; scaled by min(dead / k_aux, 1)."""
        sae = self.sae
        k_aux = min(x.shape[1] // 2, int(dead.sum()))
        pre = sae.pre_acts(x).masked_fill(~dead.to(x.device), float("-inf"))
        a_vals, a_idx = pre.topk(k_aux, dim=-1, sorted=False)
        e_hat = nn.functional.embedding_bag(a_idx, sae.W_dec, per_sample_weights=a_vals.relu(), mode="sum")
        scale = min(float(dead.sum()) / (x.shape[1] // 2), 1.0)
        return scale * (e_hat - e.detach()).pow(2).sum() / total

    def timed_step(self, x: torch.Tensor) -> float:
        if self.step_no:
            return self.step(x)
        with FlopCounterMode(display=False) as fc:
            loss = self.step(x)
        # FlopCounterMode counts the dense encoder matmul (2·B·d·latents); the sparse parts are gathers it does not
        # see: the decoder's forward and its two gradients, the encoder's two gradients, 2·B·k·d each
        B, d = x.shape
        self.flops_per_step = (int(fc.get_total_flops()) + 10 * B * self.sae.k * d) * self.world   # every rank's
        return loss

    def elapsed(self) -> float:
        return time.time() - self.t0

    @torch.no_grad()
    def metrics(self, train_fvu: float) -> dict:
        row = {"step": self.step_no, "tokens": self.tokens, "flops": self.flops_per_step * self.step_no + self.extra_flops,
               "train_fvu": round(train_fvu, 6), "seconds": round(self.elapsed(), 2)}
        if self.probe is not None and distributed.is_main():
            row.update(self.probe(self.sae))
        if self.eval_x is not None and len(self.eval_x):
            z = self.sae.encode(self.eval_x)
            row["heldout_fvu"] = round(self.sae.fvu(self.eval_x, z), 6)
            row["eval_rows"] = len(self.eval_x)
            row["l0"] = round(float((z > 0).sum(-1).float().mean()), 3)
        row["dead_fraction"] = (round(float((self.tokens - self.last_fired > self.cfg.dead_tokens).float().mean()), 6)
                                if self.tokens >= self.cfg.dead_tokens else None)
        return row


def train_sae(lm: LoadedModel, layer: LayerSpec, harvest: HarvestConfig, cfg: SAETrainConfig | None = None,
              init: SparseAutoencoder | None = None, checkpoint: str | Path | None = None,
              resume: bool = False, probe=None, eval_x: torch.Tensor | None = None) -> TrainResult:
    """Stream ``harvest.tokens`` tokens of ``lm`` at ``layer`` and train a TopK SAE on the training split's rows —
    from the tied random initialisation, or from ``init`` (e.g. a transferred SAE; its latents and k are kept).
    With ``checkpoint`` and ``cfg.checkpoint_tokens`` the run's state is saved there every that-many tokens;
    ``resume`` continues from it (the stream is re-packed up to the saved position, tokenization only).
    ``probe(sae) -> dict``: extra numbers for each metric row (the CLI's Δloss on held-out text). ``eval_x``: the
    held-out rows every metric row is measured on (default: the stream's first ``cfg.eval_rows`` held-out rows,
    read ahead before the first step; each row records the set's size as ``eval_rows``)."""
    li = lm.layer_index(layer)
    meta = {"model": lm.name, "layer": layer_name(li), "corpus": harvest.corpus, "context_size": harvest.context,
            "tokens": harvest.tokens}
    data = {k: v for k, v in asdict(harvest).items() if k != "progress"}
    return _train(lambda start: stream_rows(lm, li, harvest, start=start, split_ranks=True), lm.d_model, meta, data,
                  cfg, init, harvest.progress, checkpoint, resume, harvest.tokens, probe, eval_x,
                  expected=round(harvest.tokens * (1 - harvest.heldout_percent / 100)))


def train_sae_from_store(path, layer: int, cfg: SAETrainConfig | None = None, model: str | int = 0,
                         init: SparseAutoencoder | None = None, checkpoint: str | Path | None = None,
                         resume: bool = False, progress: bool = True, skip_bad_shards: bool = False,
                         probe=None) -> TrainResult:
    """The same training on rows of an activation store (``lrt harvest``) instead of running the model."""
    from ..harvest.store import ActivationStore

    st = ActivationStore(path, skip_bad=skip_bad_shards)
    key = st.key(model, layer)
    info = st.models[int(key.split(".")[0])]
    h = st.manifest["harvest"]
    meta = {"model": info["name"], "layer": layer_name(layer), "corpus": h["corpus"], "context_size": h["context"],
            "tokens": st.rows, "store": str(path)}
    data = {"store": st.manifest.get("corpus_fingerprint"), "key": key}

    def items(start: int):
        """Two items per shard (its held-out rows, then its training rows), from item ``start`` on."""
        for i, shard in st.shards(split_ranks=False, start=start // 2):
            got = st.read(shard, [key]) if distributed.mine(i) else None
            for j, part in enumerate((True, False)):
                if 2 * i + j >= start:
                    yield (None if got is None else got[0][key][got[1] == part]), part

    res = _train(items, info["d_model"], meta, data, cfg, init, progress, checkpoint, resume, st.rows, probe,
                 expected=st.rows - st.manifest.get("heldout_rows", 0))
    res.sae.meta["bad_shards_skipped"] = st.bad
    return res


def _train(items, d_in: int, meta: dict, data: dict, cfg: SAETrainConfig | None, init: SparseAutoencoder | None,
           progress: bool, checkpoint, resume: bool, budget: int, probe=None,
           eval_x: torch.Tensor | None = None, expected: int | None = None) -> TrainResult:
    from ..io.config import flatten
    from .checkpoint import rank_path, restore_trainer, save_trainer

    cfg = cfg or SAETrainConfig()
    if init is not None:
        init.check_input(d_in)
        if init.architecture != "topk":
            raise ConfigError("training starts from a TopK SAE; this one is " + init.architecture)
        cfg = replace(cfg, k=init.k, latents=init.d_sae)
    meta = {**meta, "recipe": cfg.recipe, "k": cfg.k}
    tr = _Trainer(cfg, d_in, meta)
    tr.probe = probe
    fingerprint = {"data": data, "sae": {k: v for k, v in flatten(cfg).items() if k != "checkpoint_tokens"},
                   "meta": meta, "init": None if init is None else init.meta.get("sha256", init.d_sae)}
    if tr.world > 1:
        fingerprint["ranks"] = tr.world
    if checkpoint is not None:
        checkpoint = rank_path(checkpoint)
    buf: list[torch.Tensor] = []
    position = 0
    if resume:
        if checkpoint is None:
            raise ConfigError("--resume needs a checkpoint (set --checkpoint-tokens)", option="resume")
        buf, position = restore_trainer(checkpoint, tr, fingerprint)
    stream = items(position)
    if tr.eval_x is None and eval_x is None:                    # a new run: its first eval_rows held-out rows
        stream, eval_x = read_ahead_heldout(stream, cfg.eval_rows, cap=max(cfg.shuffle_rows, 2 ** 28 // d_in))  # ≤ 1 GiB
    if eval_x is not None:                                      # given: it wins over a checkpoint's
        tr.eval_x = eval_x[:cfg.eval_rows].float()
    fixed = tr.eval_x is not None                               # the stream's held-out rows then go unused
    held: list[torch.Tensor] = [] if tr.eval_x is None else [tr.eval_x]
    have = sum(len(b) for b in buf)
    train_fvu = tr.history[-1]["train_fvu"] if tr.history else float("nan")
    last_ckpt = tr.tokens
    bar = tqdm(total=expected, initial=tr.tokens, desc="sae", unit="tok", unit_scale=True,    # training rows
               disable=not progress or not distributed.is_main())

    def drain(final: bool) -> None:
        """Shuffle the buffer and take every full batch; keep the rest for later (dropped at the very end)."""
        nonlocal buf, have, train_fvu
        rows = torch.cat(buf) if buf else torch.empty(0, d_in)
        rows = rows[torch.randperm(len(rows), generator=tr.g)]
        if tr.sae is None:
            tr.start(rows, init)
        full = distributed.min_int(len(rows) // cfg.sae_batch_size)    # DDP: the same number of steps on every rank
        for i in range(full):
            train_fvu = tr.timed_step(rows[i * cfg.sae_batch_size:(i + 1) * cfg.sae_batch_size])
            bar.update(cfg.sae_batch_size * tr.world)
            if tr.step_no % cfg.eval_every == 0:
                tr.history.append(tr.metrics(train_fvu))
        tail = rows[full * cfg.sae_batch_size:]
        buf, have = ([], 0) if final else ([tail], len(tail))

    threshold = max(cfg.shuffle_rows, cfg.sae_batch_size)
    for rows, is_held in stream:
        position += 1
        if rows is not None and is_held:
            if not fixed and sum(len(h) for h in held) < cfg.eval_rows:
                held.append(rows)
                tr.eval_x = torch.cat(held)[:cfg.eval_rows]
        elif rows is not None:
            buf.append(rows)
            have += len(rows)
        if tr.world > 1:          # DDP: ranks decide together at the end of each round of `world` stream items
            if position % tr.world:
                continue
            go = distributed.sum_int(have) >= tr.world * threshold
        else:
            go = not is_held and have >= threshold
        if go:
            drain(False)
            if checkpoint is not None and cfg.checkpoint_tokens and tr.tokens - last_ckpt >= cfg.checkpoint_tokens:
                save_trainer(checkpoint, tr, buf, position, fingerprint)
                last_ckpt = tr.tokens
    if (distributed.sum_int(have) if tr.world > 1 else have):
        drain(True)
    if tr.world > 1 and tr.sae is not None:
        sums = distributed.gather(float(sum(p.double().sum() for p in tr.sae.parameters())))
        if len(set(sums)) != 1:
            raise DistributedError(f"the SAE's parameters differ between ranks ({sums}); report this as a bug")
    bar.total = bar.n                     # done: the budget's first tokens and the last partial batch are not trained
    bar.close()
    if tr.sae is None or tr.step_no == 0:
        raise ConfigError(f"{budget:,} tokens gave fewer than one batch of {cfg.sae_batch_size} training "
                          "rows; raise the token budget", option="tokens")
    if not tr.history or tr.history[-1]["step"] != tr.step_no:
        tr.history.append(tr.metrics(train_fvu))
    tr.sae.meta.update({"steps": tr.step_no, "trained_tokens": tr.tokens, "lr": tr.lr,
                        "flops": tr.flops_per_step * tr.step_no + tr.extra_flops, "ranks": tr.world})
    return TrainResult(tr.sae, tr.history, tr.flops_per_step, tr.step_no, tr.tokens, round(tr.elapsed(), 2))

