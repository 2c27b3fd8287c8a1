"""The family's training recipe as a configuration (torch-free)."""

from __future__ import annotations

import math
from dataclasses import dataclass, field

from ...errors import ConfigError

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


def parse_sizes(spec) -> list[ZooSize]:
    """``"xs,s,m"`` or ``"l:384x6:12"`` entries, a list of :class:`ZooSize`, or their dicts (from a config.json)."""
    if isinstance(spec, str):
        spec = [item.strip() for item in spec.split(",") if item.strip()]
    sizes = []
    for item in spec:
        if isinstance(item, ZooSize):
            sizes.append(item)
        elif isinstance(item, dict):
            sizes.append(ZooSize(**item))
        elif item in DEFAULT_SIZES:
            sizes.append(DEFAULT_SIZES[item])
        else:
            try:
                name, wl, heads = item.split(":")
                width, layers = (int(v) for v in wl.lower().split("x"))
                sizes.append(ZooSize(name, width, layers, int(heads)))
            except ValueError:
                raise ConfigError(f"size {item!r} is neither one of {', '.join(DEFAULT_SIZES)} nor "
                                  "NAME:WIDTHxLAYERS:HEADS (e.g. l:384x6:12)", option="sizes") from None
    if not sizes:
        raise ConfigError("no model sizes given", option="sizes")
    return sizes


@dataclass
class TrainConfig:
    """Train the family: one BPE tokenizer, several Llama decoders on the same token stream."""

    corpus: str
    """JSONL(.gz) corpus with a 'text' field (../shared/data/natural_text.jsonl.gz for the shipped family)."""
    out: str
    """Output directory (tokenizer, one directory per model, cards, family.json)."""
    sizes: list[ZooSize] | str = field(default_factory=lambda: list(DEFAULT_SIZES.values()))
    """Comma list of sizes (xs, s, m) or NAME:WIDTHxLAYERS:HEADS entries (e.g. l:384x6:12)."""
    vocab_size: int = 8192
    """BPE vocabulary size."""
    seq_len: int = 256
    """Training sequence length."""
    batch_size: int = 16
    """Sequences per step."""
    lr: float = 3e-3
    """Peak learning rate (one-cycle: 5% warm-up, cosine to 10%)."""
    tokens: int | None = None
    """Tokens per model. Default: one epoch of the train split."""
    seed: int = 0
    """Seed of the data order and the initialisation."""
    heldout_percent: float = 5.0
    """Share of documents held out of training (by document-id hash)."""
    checkpoint_every: int = 100
    """Steps between checkpoints (a rerun resumes from the last one)."""
    threads: int | None = None
    """Torch threads per training process."""
    jobs: int = 1
    """Train sizes in this many processes at once (CPU; 1.27× on 2 cores with 1 thread each)."""
    device: str = "cpu"
    """Training device (the recipe is the same; the card says where it ran)."""
    overwrite: bool = False
    """Replace a family already in the output directory."""

    def __post_init__(self):
        self.sizes = parse_sizes(self.sizes)
