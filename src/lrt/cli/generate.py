"""``lrt generate``: text from a model with a steering vector applied, next to the unsteered text."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass, field
from typing import Iterator

from ..models.config import LoadConfig
from ..steering.config import MODES, WHERE
from .options import command


@dataclass
class GenerateRun:
    """Generate text with a steering vector applied."""

    model: str
    """The model (the vector's own, or one of the same width)."""
    vector: str
    """Vector directory."""
    prompt: list[str]
    """Prompt (repeatable)."""
    alpha: float = 0.2
    """Fraction of the layer's median token norm (add: the step; clamp: the value; ablate ignores it)."""
    where: str = field(default="all", metadata={"choices": WHERE})
    """Positions steered: all, after_prompt (the last prompt token on), generated."""
    mode: str = field(default="add", metadata={"choices": MODES})
    """add: h + α·v; ablate: remove the component along v; clamp: set it to α·‖v‖."""
    max_new_tokens: int = 40
    """Tokens to generate per prompt."""
    progress: bool = True
    """Show a progress bar of the tokens generated."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""


def label(mode: str, alpha: float) -> str:
    """How a steered generation is labelled: ``α=0.2`` (add), ``ablate``, ``clamp α=0.2``."""
    return {"add": f"α={alpha}", "ablate": "ablate"}.get(mode, f"{mode} α={alpha}")


SMALL_MODEL = 50_000_000
"""Parameters under which one token's decoding step is too small to split over CPU threads."""


@contextlib.contextmanager
def decoding_threads(lm) -> Iterator[None]:
    """One CPU thread while a small model decodes token by token: each step's matrices are too small to split, and
    splitting them costs more than it saves (zoo-m, 40 tokens on a busy 2-core CPU: 7.9 s on 2 threads, 0.9 s on
    one); large models and GPUs keep their threads."""
    import torch

    small = lm.device.type == "cpu" and sum(p.numel() for p in lm.model.parameters()) < SMALL_MODEL
    before = torch.get_num_threads()
    if small:
        torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


class TokenBar:
    """A progress bar of generated tokens, fed by ``generate(streamer=...)`` (its first call is the prompt)."""

    def __init__(self, bar):
        self.bar, self.prompt = bar, True

    def put(self, value) -> None:
        if self.prompt:
            self.prompt = False
        else:
            self.bar.update(1)

    def end(self) -> None:
        self.prompt = True


def run(cfg: GenerateRun) -> int:
    import torch
    from tqdm.auto import tqdm

    from ..steering.apply import scaled, steering
    from ..steering.vectors import SteeringVector

    v = SteeringVector.load(cfg.vector)              # a bad vector directory: before the model loads
    lm = cfg.load.load(cfg.model)
    v.check_model(lm)
    tok = lm.tokenizer
    # ablate removes the component along v whatever its scale (clamp to 0 is the same); add and clamp use
    # α · the median token norm (a zero δ has no direction to clamp along)
    mode = "ablate" if cfg.mode == "clamp" and cfg.alpha == 0 else cfg.mode
    delta = v.unit() if mode == "ablate" else scaled(v.unit(), cfg.alpha, v.median_norm)
    for prompt in cfg.prompt:
        ids = tok(prompt, return_tensors="pt").input_ids.to(lm.device)
        texts = []
        with tqdm(total=2 * cfg.max_new_tokens, desc="generate", unit="tok", leave=False,
                  disable=not cfg.progress) as bar, decoding_threads(lm):
            for steered in (False, True):
                hook = steering(lm, v.layer, delta, mode, cfg.where) if steered else contextlib.nullcontext()
                with torch.no_grad(), hook:
                    gen = lm.model.generate(ids, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                                            pad_token_id=tok.pad_token_id, streamer=TokenBar(bar))
                bar.update((1 + steered) * cfg.max_new_tokens - bar.n)      # a generation that stopped early
                texts.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
        print(f"\n>>> {prompt}\n[unsteered] {texts[0]}\n[{label(cfg.mode, cfg.alpha)}] {texts[1]}")
    return 0


def register(sub) -> None:
    command(sub, "generate", "generate text with a steering vector applied", run, GenerateRun)
