"""What a steering vector is computed from, and how it is carried over (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError

METHODS = ("mean", "pca")
POSITIONS = ("mean", "last")
MODES = ("add", "ablate", "clamp")              # how a vector is applied (lrt.steering.apply)
WHERE = ("all", "after_prompt", "generated")    # at which positions


@dataclass
class VectorConfig:
    """A steering vector: a built-in concept from labelled text, or A/B contrast pairs (CAA)."""

    concept: str = "sentiment"
    """Built-in concept from labelled text: sentiment | genre:X:Y (Brown categories)."""
    concept_corpus: str | None = None
    """Corpus with the concept's labelled texts. Default: the review sample shipped with lrt."""
    contrast: str | None = None
    """A/B contrast data instead of a concept: a data set name (caa:refusal; `lrt data list`), or a CAA JSON,
    model-written-evals JSONL, or prompt/positive/negative JSONL file."""
    split: str | None = field(default="train", metadata={"choices": ("train", "heldout", "all")})
    """Concept texts: the corpus split they are drawn from (the same salted document hash everywhere; 'all'
    mixes both and is refused by the overlap check if a test item comes from the same documents)."""
    max_pairs: int = 300
    """Most contrast pairs (or texts per side) used."""
    chat: bool = False
    """Wrap questions in the tokenizer's chat template (instruct models)."""
    balance: bool = True
    """A/B contrasts: give each matching answer (letter A, letter B; on persona items also Yes-matching and
    No-matching) the same weight in the mean, so the vector does not carry a preference for the letter or the
    word the contrast set happens to favour; pairs without a mirror ("(C) against (A)") are left out (off: the
    plain CAA mean)."""
    vector_method: str = field(default="mean", metadata={"choices": METHODS})
    """A/B contrasts: mean (CAA mean difference) or pca (first principal direction of the differences)."""
    position: str = field(default="mean", metadata={"choices": POSITIONS})
    """Text concepts: mean over tokens or last token."""
    seed: int = 0
    """Seed of every random choice (row order, initialisation, controls, random vectors)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        if self.split == "all":
            self.split = None
        if self.contrast is None and self.concept_corpus is None:
            from ..zoo import registry

            self.concept_corpus = str(registry.review_sample())
        from ..data.registry import check

        check(self.contrast, "contrast", "contrast")
        check(self.concept_corpus, "corpus", "concept_corpus")
        if self.max_pairs < 1:
            raise ConfigError(f"max_pairs must be at least 1, got {self.max_pairs}", option="max_pairs")
        if self.vector_method not in METHODS:
            raise ConfigError(f"unknown method {self.vector_method!r}; use one of {', '.join(METHODS)}",
                              option="vector_method")
        if self.position not in POSITIONS:
            raise ConfigError(f"position must be one of {', '.join(POSITIONS)}", option="position")
