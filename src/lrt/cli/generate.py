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
    """Fraction of the layer's median token norm."""
    where: str = field(default="all", metadata={"choices": WHERE})
    """Positions steered: all, after_prompt (the last prompt token on), generated."""
    mode: str = field(default="add", metadata={"choices": MODES})
    """add: h + α·v; ablate: remove the component along v; clamp: set it to α·‖v‖."""
    max_new_tokens: int = 40
    """Tokens to generate per prompt."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""


def run(cfg: GenerateRun) -> int:
    import torch

    from ..models.load import load_model
    from ..steering.apply import scaled, steering
    from ..steering.vectors import SteeringVector

    lm = load_model(cfg.model, cfg.load.dtype, cfg.load.device)
    v = SteeringVector.load(cfg.vector)
    v.check_model(lm)
    tok = lm.tokenizer
    for prompt in cfg.prompt:
        ids = tok(prompt, return_tensors="pt").input_ids.to(lm.device)
        texts = []
        for alpha in (0.0, cfg.alpha):
            with torch.no_grad(), steering(lm, v.layer, scaled(v.unit(), alpha, v.median_norm), cfg.mode, cfg.where):
                gen = lm.model.generate(ids, max_new_tokens=cfg.max_new_tokens, do_sample=False,
                                        pad_token_id=tok.pad_token_id)
            texts.append(tok.decode(gen[0, ids.shape[1]:], skip_special_tokens=True))
        print(f"\n>>> {prompt}\n[unsteered] {texts[0]}\n[α={cfg.alpha}] {texts[1]}")
    return 0


def register(sub) -> None:
    command(sub, "generate", "generate text with a steering vector applied", run, GenerateRun)
