"""The training loop of the family: one size at a time, or several sizes in parallel processes; checkpoints
every ``checkpoint_every`` steps, and a rerun with the same ``out`` resumes."""

from __future__ import annotations

import dataclasses
import json
import math
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save_file
from tqdm.auto import tqdm

from .card import write_cards
from .recipe import TrainConfig, ZooSize, eval_loss, lr_at, make_model, tokenize_split, train_tokenizer, validate


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
    (Path(cfg.out) / "recipe.json").write_text(json.dumps(
        {**dataclasses.asdict(cfg), "sizes": [dataclasses.asdict(s) for s in cfg.sizes]}, indent=2))
    tokenizer, train_tokens, heldout = _streams(cfg)
    if cfg.jobs > 1:
        _train_in_processes(cfg)
    results = {}
    for size in cfg.sizes:  # sizes trained by the worker processes are only read back here
        results[size.name] = train_one(size, cfg, tokenizer, train_tokens, heldout)
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
