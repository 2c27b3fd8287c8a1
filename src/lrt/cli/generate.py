"""``lrt generate``: text from a model with a steering vector applied, next to the unsteered text."""

from __future__ import annotations

from dataclasses import dataclass, field

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
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""


def label(mode: str, alpha: float) -> str:
    """How a steered generation is labelled: ``α=0.2`` (add), ``ablate``, ``clamp α=0.2``."""
    return {"add": f"α={alpha}", "ablate": "ablate"}.get(mode, f"{mode} α={alpha}")


def run(cfg: GenerateRun) -> int:
    import contextlib

    import torch

    from ..steering.apply import scaled, steering
    from ..steering.vectors import SteeringVector

    lm = cfg.load.load(cfg.model)
    v = SteeringVector.load(cfg.vector)
    v.check_model(lm)
    tok = lm.tokenizer
    # ablate removes the component along v whatever its scale (clamp to 0 is the same); add and clamp use
    # α · the median token norm (a zero δ has no direction to clamp along)
    mode = "ablate" if cfg.mode == "clamp" and cfg.alpha == 0 else cfg.mode
    delta = v.unit() if mode == "ablate" else scaled(v.unit(), cfg.alpha, v.median_norm)
    for prompt in cfg.prompt:
        ids = tok(prompt, return_tensors="pt").input_ids.to(lm.device)
        texts = []
        for steered in (False, True):
            hook = steering(lm, v.layer, delta, mode, cfg.where) if steered else contextlib.nullcontext()
            with torch.no_grad(), hook:
                gen = lm.model.generate(ids, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                                        pad_token_id=tok.pad_token_id)
            texts.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
        print(f"\n>>> {prompt}\n[unsteered] {texts[0]}\n[{label(cfg.mode, cfg.alpha)}] {texts[1]}")
    return 0


def register(sub) -> None:
    command(sub, "generate", "generate text with a steering vector applied", run, GenerateRun)
