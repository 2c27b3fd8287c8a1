"""Train the embedded model family: one BPE tokenizer, several Llama decoders on the same token stream.

Recipe (all sizes identical except width/depth): byte-level BPE with ``vocab_size`` tokens trained on the
train split; documents joined with ``<|endoftext|>``, packed into ``seq_len`` sequences, shuffled once
with ``seed`` (every size sees the same sequences in the same order); AdamW (β 0.9/0.95, weight decay
0.1), residual projections initialised at std 0.02/√(2·layers), one-cycle learning rate (5% linear warm-up, cosine to 10%), gradient clipping 1.0, fp32 weights,
saved as bf16. Checkpoints every ``checkpoint_every`` steps; a rerun with the same ``out`` resumes.
"""

from __future__ import annotations

import math
import shutil
from pathlib import Path

import numpy as np
import torch
from tqdm.auto import tqdm

from ...data.corpus import iter_documents
from ...errors import ConfigError, OutputDirError
from .config import EOT, TrainConfig, ZooSize


def validate(cfg: TrainConfig) -> None:
    """Every check that can fail, before any training starts."""
    if cfg.jobs < 1:
        raise ConfigError(f"jobs must be at least 1, got {cfg.jobs}", option="jobs")
    for s in cfg.sizes:
        if s.width % s.heads:
            raise ConfigError(f"size {s.name}: width {s.width} is not divisible by {s.heads} heads; "
                              "choose a head count that divides the width")
    if not Path(cfg.corpus).exists():
        raise ConfigError(f"corpus {cfg.corpus!r} does not exist; pass a JSONL(.gz) file with a 'text' field")
    next(iter_documents(cfg.corpus))  # raises CorpusError on a corpus without 'text'
    out = Path(cfg.out)
    if (out / "family.json").exists() and not cfg.overwrite:
        raise OutputDirError(f"{out} already holds a trained family (family.json); train into another directory, "
                             "or overwrite it", option="overwrite")
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
    with torch.random.fork_rng(devices=[]):     # seeded init; the caller's global RNG state is restored after
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
