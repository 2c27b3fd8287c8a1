"""What to harvest: corpus, token budget, packing, the map's held-out split (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError


@dataclass
class HarvestConfig:
    """A stream of packed sequences from a corpus, run through the models."""

    corpus: str | None = None
    """JSONL(.gz) with a 'text' field, a text file, a directory of them, a data set name (lrt:text: the corpus
    sample shipped with lrt) or a HF data set name. Default: lrt:heldout (the zoo's held-out split, never seen in
    its training)."""
    mix: list[str] = field(default_factory=list)
    """Chat data mixed into the corpus (instruct models): A/B contrast files (e.g. CAA generate sets of behaviours
    other than the one evaluated) or JSONL of {"messages": [...]} turns, rendered with the chat template."""
    mix_share: float = 0.33
    """Share of the text (characters) that comes from the chat data when it is given."""
    tokens: int = 200_000
    """Tokens to run through the models (train and held-out split together)."""
    context: int = 256
    """Packed sequence length (tokens)."""
    batch_size: int = 8
    """Sequences per forward pass."""
    heldout_percent: float = 10.0
    """Share of the token budget reserved for held-out documents (chosen by a salted hash of the document id);
    documents are read until both the training and the held-out share are filled."""
    shuffle: bool = True
    """Read documents in a seeded random order over the whole corpus (off: file order, e.g. one source first)."""
    max_doc_tokens: int = 1024
    """Use at most this many tokens of each document (0: all), so that a small budget samples many documents."""
    seed: int = 0
    """Seed of every random choice (document order, row order, initialisation, controls, random vectors)."""
    keep_first_token: bool = False
    """Keep position 0 of each sequence (the attention-sink token, left out by default)."""
    doc_split: str | None = None
    """Read only this split of the corpus' own document split (train | heldout), e.g. the zoo's held-out text."""
    doc_split_percent: float = 5.0
    """The held-out share of that corpus split (5 for the zoo's)."""
    align: str = field(default="none", metadata={"choices": ("none", "chars")})
    """How the two models' positions are paired: none (one tokenizer: token i with token i, the models must
    tokenize identically) or chars (two tokenizers: each model runs on its own tokens of the same text, and the
    positions whose tokens end at the same character are paired; the aligned share is recorded in map.json)."""
    early_stop: bool = True
    """End each forward pass after the deepest layer needed."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        if self.corpus is None:
            from ..zoo import registry

            self.corpus = str(registry.heldout_text())
        from ..data.registry import check

        check(self.corpus, "corpus", "corpus")
        for f in self.mix:
            check(f, "contrast", "mix")
        if self.tokens <= 0:
            raise ConfigError(f"tokens must be positive, got {self.tokens}", option="tokens")
        if self.context < 2 or self.batch_size < 1:
            raise ConfigError(f"context must be >= 2 and batch size >= 1 (got {self.context}, {self.batch_size})")
        if not 0 <= self.heldout_percent < 100:
            raise ConfigError(f"heldout_percent must be in [0, 100), got {self.heldout_percent}")
        if not 0 <= self.mix_share < 1:
            raise ConfigError(f"mix_share must be in [0, 1), got {self.mix_share}", option="mix_share")
        if self.doc_split not in (None, "train", "heldout"):
            raise ConfigError(f"doc_split must be train or heldout, got {self.doc_split!r}")
