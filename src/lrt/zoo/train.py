"""Train the embedded model family: one BPE tokenizer, several Llama decoders on the same token stream.

Recipe (all sizes identical except width/depth): byte-level BPE with ``vocab_size`` tokens trained on the
train split; documents joined with ``<|endoftext|>``, packed into ``seq_len`` sequences, shuffled once
with ``seed`` (every size sees the same sequences in the same order); AdamW (β 0.9/0.95, weight decay
0.1), residual projections initialised at std 0.02/√(2·layers), one-cycle learning rate (5% linear warm-up, cosine to 10%), gradient clipping 1.0, fp32 weights,
saved as bf16. Checkpoints every ``checkpoint_every`` steps; a rerun with the same ``out`` resumes.
"""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from ..corpus import iter_documents
from ..errors import ConfigError, OutputDirError

EOT = "<|endoftext|>"


@dataclass(frozen=True)
class ZooSize:
    name: str
    width: int
    layers: int
    heads: int

    @property
    def intermediate(self) -> int:  # SwiGLU ~8/3 x width, multiple of 32
        return int(math.ceil(self.width * 8 / 3 / 32) * 32)


DEFAULT_SIZES = {
    "xs": ZooSize("xs", 128, 2, 4),
    "s": ZooSize("s", 192, 3, 6),
    "m": ZooSize("m", 256, 4, 8),
}


@dataclass
class TrainConfig:
    corpus: str
    out: str
    sizes: list[ZooSize] = field(default_factory=lambda: list(DEFAULT_SIZES.values()))
    vocab_size: int = 8192
    seq_len: int = 256
    batch_size: int = 16
    lr: float = 3e-3
    tokens: int | None = None  # per model; None = one epoch of the train split
    seed: int = 0
    heldout_percent: float = 5.0
    checkpoint_every: int = 100
    threads: int | None = None       # per training process
    jobs: int = 1                    # CPU: train sizes in this many processes at once (1.27–1.4× on 2 cores, 1 thread each)
    device: str = "cpu"              # e.g. "cuda": the recipe is the same, the card says where it ran
    overwrite: bool = False


def validate(cfg: TrainConfig) -> None:
    """Every check that can fail, before any training starts."""
    if cfg.jobs < 1:
        raise ConfigError(f"--jobs must be at least 1, got {cfg.jobs}")
    for s in cfg.sizes:
        if s.width % s.heads:
            raise ConfigError(f"size {s.name}: width {s.width} is not divisible by {s.heads} heads; "
                              "choose a head count that divides the width")
    if not Path(cfg.corpus).exists():
        raise ConfigError(f"corpus {cfg.corpus!r} does not exist; pass a JSONL(.gz) file with a 'text' field")
    next(iter_documents(cfg.corpus))  # raises CorpusError on a corpus without 'text'
    out = Path(cfg.out)
    if (out / "family.json").exists() and not cfg.overwrite:
        raise OutputDirError(f"{out} already holds a trained family (family.json); pass --overwrite to replace it")
    if cfg.overwrite and out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True, exist_ok=True)


def train_tokenizer(cfg: TrainConfig):
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers
    from transformers import PreTrainedTokenizerFast

    tok_dir = Path(cfg.out) / "tokenizer"
    if (tok_dir / "tokenizer.json").exists():
        return PreTrainedTokenizerFast.from_pretrained(tok_dir)
    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(vocab_size=cfg.vocab_size, special_tokens=[EOT], show_progress=True,
                                  initial_alphabet=pre_tokenizers.ByteLevel.alphabet())
    texts = (d["text"] for d in iter_documents(cfg.corpus, "train", cfg.heldout_percent))
    tok.train_from_iterator(texts, trainer)
    fast = PreTrainedTokenizerFast(tokenizer_object=tok, bos_token=EOT, eos_token=EOT, pad_token=EOT,
                                   unk_token=EOT, model_max_length=cfg.seq_len * 4)
    fast.save_pretrained(tok_dir)
    return fast


def tokenize_split(cfg: TrainConfig, tokenizer, split: str) -> tuple[np.ndarray, dict[str, np.ndarray]]:
    """Token stream of a split (documents joined by EOT), cached; also per-source streams."""
    cache = Path(cfg.out) / f"tokens-{split}.npz"
    if cache.exists():
        z = np.load(cache)
        return z["all"], {k[4:]: z[k] for k in z.files if k.startswith("src_")}
    eot = tokenizer.convert_tokens_to_ids(EOT)
    per_source: dict[str, list[int]] = {}
    stream: list[int] = []
    for doc in tqdm(iter_documents(cfg.corpus, split, cfg.heldout_percent), desc=f"tokenize {split}", unit="doc"):
        ids = tokenizer(doc["text"])["input_ids"] + [eot]
        stream.extend(ids)
        per_source.setdefault(doc.get("source", "all"), []).extend(ids)
    arr = np.asarray(stream, dtype=np.uint16)
    srcs = {k: np.asarray(v, dtype=np.uint16) for k, v in per_source.items()}
    np.savez(cache, all=arr, **{f"src_{k}": v for k, v in srcs.items()})
    return arr, srcs


def make_model(size: ZooSize, cfg: TrainConfig, tokenizer):
    from transformers import LlamaConfig, LlamaForCausalLM

    eot = tokenizer.convert_tokens_to_ids(EOT)
    conf = LlamaConfig(vocab_size=len(tokenizer), hidden_size=size.width, intermediate_size=size.intermediate,
                       num_hidden_layers=size.layers, num_attention_heads=size.heads,
                       num_key_value_heads=size.heads, max_position_embeddings=max(512, cfg.seq_len),
                       rms_norm_eps=1e-5, tie_word_embeddings=True, bos_token_id=eot, eos_token_id=eot,
                       pad_token_id=eot, rope_theta=10000.0)
    torch.manual_seed(cfg.seed)
    model = LlamaForCausalLM(conf)
    # GPT-2-style residual scaling: the two projections that write into the residual stream start at
    # std 0.02/sqrt(2·layers). Without it the 4-layer model trained slower than the 2-layer one for 800 steps.
    std = conf.initializer_range / math.sqrt(2 * size.layers)
    for name, p in model.named_parameters():
        if name.endswith(("o_proj.weight", "down_proj.weight")):
            torch.nn.init.normal_(p, std=std)
    return model


def lr_at(step: int, total: int, peak: float) -> float:
    warm = max(1, int(0.05 * total))
    if step < warm:
        return peak * (step + 1) / warm
    t = (step - warm) / max(1, total - warm)
    return peak * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * t)))


@torch.no_grad()
def eval_loss(model, tokens: np.ndarray, seq_len: int, max_seqs: int = 200, batch: int = 16) -> float:
    """Mean next-token cross-entropy (nats) on the first ``max_seqs`` packed sequences of ``tokens``."""
    n = min(max_seqs, len(tokens) // seq_len)
    if n == 0:
        return float("nan")
    data = torch.from_numpy(tokens[: n * seq_len].astype(np.int64)).view(n, seq_len)
    dev = next(model.parameters()).device
    model.eval()
    total, count = 0.0, 0
    for i in range(0, n, batch):
        x = data[i:i + batch].to(dev)
        out = model(input_ids=x, labels=x)
        total += out.loss.item() * x.numel()
        count += x.numel()
    return total / count


def train_one(size: ZooSize, cfg: TrainConfig, tokenizer, train_tokens: np.ndarray, heldout: np.ndarray,
              position: int = 0) -> dict:
    out = Path(cfg.out)
    final = out / f"zoo-{size.name}"
    if (final / "train_state.json").exists():
        return json.loads((final / "train_state.json").read_text())
    ckpt = out / f".ckpt-{size.name}"
    ckpt.mkdir(exist_ok=True)
    n_seq = len(train_tokens) // cfg.seq_len
    data = torch.from_numpy(train_tokens[: n_seq * cfg.seq_len].astype(np.int64)).view(n_seq, cfg.seq_len)
    tokens_per_step = cfg.batch_size * cfg.seq_len
    total_steps = (cfg.tokens or n_seq * cfg.seq_len) // tokens_per_step
    g = torch.Generator().manual_seed(cfg.seed)
    epochs = math.ceil(total_steps * cfg.batch_size / n_seq)
    order = torch.cat([torch.randperm(n_seq, generator=g) for _ in range(epochs)])

    model = make_model(size, cfg, tokenizer).to(cfg.device)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, betas=(0.9, 0.95), weight_decay=0.1)
    state = {"step": 0, "losses": [], "seconds": 0.0}
    if (ckpt / "state.json").exists():
        model.load_state_dict(load_file(ckpt / "model.safetensors", device=cfg.device), strict=False)
        model.tie_weights()
        opt.load_state_dict(torch.load(ckpt / "optim.pt", weights_only=True, map_location=cfg.device))  # our own
        state = json.loads((ckpt / "state.json").read_text())

    model.train()
    bar = tqdm(total=total_steps, initial=state["step"], desc=f"train zoo-{size.name}", unit="step",
               position=position)
    t0 = t_run = time.time()
    for step in range(state["step"], total_steps):
        idx = order[step * cfg.batch_size:(step + 1) * cfg.batch_size]
        x = data[idx].to(cfg.device)
        for grp in opt.param_groups:
            grp["lr"] = lr_at(step, total_steps, cfg.lr)
        loss = model(input_ids=x, labels=x).loss
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
        opt.step()
        state["losses"].append(round(loss.item(), 4))
        state["step"] = step + 1
        elapsed = state["seconds"] + time.time() - t0
        bar.set_postfix(loss=f"{loss.item():.3f}", tok_s=f"{(step + 1 - bar.initial) * tokens_per_step / max(1e-9, time.time() - t_run):.0f}")
        bar.update(1)
        if (step + 1) % cfg.checkpoint_every == 0 or step + 1 == total_steps:
            state["seconds"] = elapsed
            t0 = time.time()
            save_file({k: v.contiguous() for k, v in model.state_dict().items() if k != "lm_head.weight"},
                      ckpt / "model.safetensors")
            torch.save(opt.state_dict(), ckpt / "optim.pt")
            (ckpt / "state.json").write_text(json.dumps(state))
    bar.close()

    model.eval()
    result = {"size": dataclasses.asdict(size), "steps": total_steps, "tokens_seen": total_steps * tokens_per_step,
              "train_seconds": round(state["seconds"], 1), "losses": state["losses"],
              "heldout_loss": eval_loss(model, heldout, cfg.seq_len),
              "threads": torch.get_num_threads(),
              "device": torch.cuda.get_device_name() if cfg.device.startswith("cuda") else "cpu"}
    tmp = out / f".tmp-zoo-{size.name}"
    shutil.rmtree(tmp, ignore_errors=True)
    model.to("cpu", torch.bfloat16).save_pretrained(tmp)
    tokenizer.save_pretrained(tmp)
    (tmp / "train_state.json").write_text(json.dumps(result))
    tmp.rename(final)
    shutil.rmtree(ckpt, ignore_errors=True)
    return result


def _streams(cfg: TrainConfig):
    """The tokenizer and the train / held-out token streams (trained and cached on the first call)."""
    tokenizer = train_tokenizer(cfg)
    return tokenizer, tokenize_split(cfg, tokenizer, "train")[0], tokenize_split(cfg, tokenizer, "heldout")[0]


def train_family(cfg: TrainConfig) -> dict:
    """Run the whole recipe; returns the family summary (also written to ``out/family.json``)."""
    validate(cfg)
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    (Path(cfg.out) / "recipe.json").write_text(json.dumps(
        {**dataclasses.asdict(cfg), "sizes": [dataclasses.asdict(s) for s in cfg.sizes]}, indent=2))
    tokenizer, train_tokens, heldout = _streams(cfg)
    if cfg.jobs > 1:
        _train_in_processes(cfg)
    results = {}
    for size in cfg.sizes:  # sizes trained by the worker processes are only read back here
        results[size.name] = train_one(size, cfg, tokenizer, train_tokens, heldout)
    from .card import write_cards  # imported late: matplotlib is only needed here

    summary = write_cards(cfg, results)
    (Path(cfg.out) / "family.json").write_text(json.dumps(summary, indent=2))
    return summary


def _cost(size: ZooSize, vocab: int) -> int:
    """Per-token training FLOPs up to a constant: blocks + tied LM head."""
    return 12 * size.layers * size.width ** 2 + vocab * size.width


def _train_group(cfg: TrainConfig, names: list[str], position: int) -> None:
    if cfg.threads:
        torch.set_num_threads(cfg.threads)
    tokenizer, train_tokens, heldout = _streams(cfg)   # cached by the parent: only read here
    for size in cfg.sizes:
        if size.name in names:
            train_one(size, cfg, tokenizer, train_tokens, heldout, position)


def _train_in_processes(cfg: TrainConfig) -> None:
    """Split the sizes into ``cfg.jobs`` groups of about equal cost (largest first) and train them at once."""
    import multiprocessing as mp

    groups: list[list[str]] = [[] for _ in range(cfg.jobs)]
    load = [0] * cfg.jobs
    for size in sorted(cfg.sizes, key=lambda s: -_cost(s, cfg.vocab_size)):
        k = load.index(min(load))
        groups[k].append(size.name)
        load[k] += _cost(size, cfg.vocab_size)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_train_group, args=(cfg, g, i), name=f"zoo-train-{i}") for i, g in enumerate(groups) if g]
    for p in procs:
        p.start()
    for p in procs:
        p.join()
    failed = [p.name for p in procs if p.exitcode != 0]
    if failed:
        raise RuntimeError(f"training process(es) {', '.join(failed)} failed (see their messages above); "
                           "rerun the same command to resume from the last checkpoints")
