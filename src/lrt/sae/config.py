"""How an SAE is trained (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

RECIPES = ("stitching", "sparsify")


@dataclass
class SAETrainConfig:
    """A TopK SAE trained with Adam on activations streamed from the model (unit-norm decoder rows)."""

    k: int = 32
    """Active latents per token (TopK)."""
    latents: int = 0
    """Number of latents (0: expansion × the layer's width)."""
    expansion: int = 8
    """Latents per input dimension when latents is 0."""
    recipe: str = field(default="stitching", metadata={"choices": RECIPES})
    """stitching: lr 1e-4 constant, no auxiliary loss (the model-stitching paper); sparsify: lr 2e-4/√(latents/2¹⁴)
    with a linear warm-up over the first warmup_steps and the AuxK loss on dead latents (EleutherAI sparsify)."""
    lr: float | None = None
    """Adam learning rate (default: the recipe's)."""
    warmup_steps: int = 100
    """Linear warm-up steps (recipe sparsify)."""
    auxk_alpha: float | None = None
    """Weight of the AuxK loss on dead latents (default: 1/32 for recipe sparsify, 0 for stitching)."""
    sae_batch_size: int = 1024
    """Activation rows per optimisation step."""
    shuffle_rows: int = 16384
    """Rows held in the shuffle buffer (tokens of one sequence are not all in one step)."""
    eval_every: int = 50
    """Steps between metric rows (held-out FVU, L0, dead latents, FLOPs)."""
    eval_rows: int = 4096
    """Held-out rows (from the harvest's held-out documents) the metrics are measured on."""
    delta_loss_tokens: int = 2048
    """Held-out tokens on which each metric row also measures Δloss (next-token CE with the reconstruction
    spliced in, minus without; 0: only in the final metrics)."""
    dead_tokens: int = 50_000
    """A latent is dead if it has not fired on the last this-many training tokens."""
    checkpoint_tokens: int = 0
    """Training tokens between checkpoints (OUT/checkpoint.safetensors, replaced atomically; 0: none). A killed run
    continues from the last one with --resume, on CPU to the same loss curve bit for bit."""
    seed: int = 0
    """Seed of every random choice (document order, row order, initialisation, controls, random vectors)."""

    def __post_init__(self):
        if self.recipe not in RECIPES:
            raise ConfigError(f"unknown recipe {self.recipe!r}; use one of {', '.join(RECIPES)}", option="recipe")
        if self.k < 1:
            raise ConfigError(f"k must be >= 1, got {self.k}", option="k")
        if self.latents and self.k >= self.latents:
            raise ConfigError(f"k ({self.k}) must be smaller than the number of latents ({self.latents})", option="k")
        if self.sae_batch_size < 1 or self.eval_every < 1:
            raise ConfigError("sae_batch_size and eval_every must be >= 1")

    def n_latents(self, d_in: int) -> int:
        n = self.latents or self.expansion * d_in
        if self.k >= n:
            raise ConfigError(f"k ({self.k}) must be smaller than the number of latents ({n})", option="k")
        return n

    def auxk(self) -> float:
        if self.auxk_alpha is not None:
            return self.auxk_alpha
        return 1 / 32 if self.recipe == "sparsify" else 0.0

    def learning_rate(self, n_latents: int) -> float:
        if self.lr is not None:
            return self.lr
        return 1e-4 if self.recipe == "stitching" else 2e-4 / (n_latents / 2 ** 14) ** 0.5
