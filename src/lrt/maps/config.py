"""How a map is fitted and judged (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

METHODS = ("closed-form", "adamw")


@dataclass
class AdamWConfig:
    """The LRT paper's recipe: a linear layer trained with AdamW on the harvested rows."""

    epochs: int = 4
    """AdamW epochs over the training rows (method adamw)."""
    lr: float = 1e-4
    """AdamW learning rate."""
    adamw_batch_size: int = 32
    """Rows per AdamW step."""
    weight_decay: float = 0.0
    """AdamW weight decay."""
    eval_every: int = 2000
    """AdamW steps between held-out evaluations (the best held-out weights are kept)."""

    def __post_init__(self):
        if self.epochs < 1 or self.adamw_batch_size < 1 or self.lr <= 0:
            raise ConfigError(f"AdamW needs epochs >= 1, batch size >= 1 and lr > 0 (got {self.epochs}, "
                              f"{self.adamw_batch_size}, {self.lr})")


@dataclass
class FitConfig:
    """Fitting an affine map ``h_T ≈ A·h_S + p`` and the numbers that judge it."""

    ridge: float | None = None
    """Ridge penalty, relative to the mean eigenvalue of Cov(h_S). Default: chosen from ridge_grid by the R² on
    held-out rows (below the massive-norm cut), solved from the same statistics."""
    ridge_grid: list[float] = field(default_factory=lambda: [1e-6, 1e-5, 1e-4, 1e-3, 1e-2, 1e-1, 1.0])
    """Candidate ridges when the ridge is chosen on held-out rows."""
    method: str = field(default="closed-form", metadata={"choices": METHODS})
    """closed-form (streaming float64 statistics, Cholesky) or adamw (the LRT paper's recipe)."""
    max_norm_ratio: float | None = 10.0
    """Leave out of the fit tokens whose norm exceeds this × the running median (0 or None: keep all)."""
    heldout_sample: int = 20_000
    """Held-out rows kept (uniform reservoir) for the cosine and the R² below the norm quantile."""
    norm_quantile: float = 0.99
    """The robust R² is on held-out tokens under this target-norm quantile."""
    shuffled_control: bool = True
    """Also fit on unpaired (shuffled) rows: the R² a map reaches by chance."""
    seed: int = 0
    """Seed of every random choice (row order, initialisation, controls, random vectors)."""
    adamw: AdamWConfig = field(default_factory=AdamWConfig)
    """Settings of the AdamW recipe."""

    def __post_init__(self):
        if self.method not in METHODS:
            raise ConfigError(f"unknown method {self.method!r}; use one of {', '.join(METHODS)}")
        if self.ridge is not None and self.ridge < 0:
            raise ConfigError(f"ridge must be >= 0, got {self.ridge}", option="ridge")
        if self.ridge is None and (not self.ridge_grid or min(self.ridge_grid) < 0):
            raise ConfigError("the ridge grid must hold values >= 0 (or give one ridge)", option="ridge_grid")
        if not self.max_norm_ratio:
            self.max_norm_ratio = None
        elif self.max_norm_ratio < 1:
            raise ConfigError(f"max_norm_ratio must be >= 1 (or 0 to keep all tokens), got {self.max_norm_ratio}")
        if not 0 < self.norm_quantile <= 1:
            raise ConfigError(f"norm_quantile must be in (0, 1], got {self.norm_quantile}")


@dataclass
class SweepConfig:
    """Which layer pairs one harvest fits, and how much memory its statistics may take."""

    source_layers: str = "all"
    """Source layers: all (embed + every block), blocks, a list 0,2,5, a range 3-7, a stride 0-23:4 or all:4."""
    target_layers: str = "all"
    """Target layers, in the same syntax."""
    window: int = 0
    """Many-to-one: also fit each target layer from the window of this many consecutive swept source layers
    ending at its best single source layer (0: only the concatenation of all swept source layers)."""
    max_memory_gb: float | None = None
    """Refuse a sweep whose statistics would need more than this (GiB). Default: 80% of the available memory."""

    def __post_init__(self):
        if self.window < 0:
            raise ConfigError(f"window must be >= 0, got {self.window}", option="window")
        if self.max_memory_gb is not None and self.max_memory_gb <= 0:
            raise ConfigError(f"max_memory_gb must be positive, got {self.max_memory_gb}", option="max_memory_gb")
