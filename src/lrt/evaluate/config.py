"""How steering is evaluated: the α grid, random baselines, the test set (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..errors import ConfigError


def default_alphas(alpha_max: float = 0.25, steps: int = 7) -> list[float]:
    """``steps`` values evenly spaced in [−alpha_max, alpha_max] (0 included for odd ``steps``)."""
    step = 2 * alpha_max / (steps - 1)
    return [round(-alpha_max + i * step, 6) + 0.0 for i in range(steps)]   # + 0.0: no -0.0


@dataclass
class EvalConfig:
    """The α grid, random baselines and bootstrap of a steering evaluation."""

    alphas: list[float] | None = None
    """α values (fractions of the layer's median token norm); must contain 0. Default: 7 steps in ±alpha_max."""
    alpha_max: float = 0.25
    """Half-width of the default α grid."""
    alpha_steps: int = 7
    """Points of the α grid built from alpha_max or from the α search (odd, so 0 is one of them)."""
    alpha_search: bool = False
    """Choose alpha_max from the native vector's own curve on *validation* items: the largest α (probed on ±1/16 … ±2)
    where it is still monotonic and clearly above the search's own random vectors (recorded in the results)."""
    search_items: int = 12
    """Validation items the α search probes on: from --validation, or else split off the test set by a seeded
    choice (those items are then not judged on)."""
    search_random: int = 8
    """Random vectors the α search compares against; drawn apart from the verdict's --n-random ones."""
    positions: str = field(default="all", metadata={"choices": ("all", "answer")})
    """Steer every position (as the LRT paper did), or only the answer position: the prompt's KV cache is then
    computed once per item and shared by every vector and α (much cheaper; a weaker intervention)."""
    balance: bool = True
    """Weigh test items so each matching answer (letter A and letter B; on persona items also the options' Yes and
    No) counts equally: a preference for one letter or word — the model's, a vector's — then cancels instead of
    showing as steering whose sign depends on the test set's share of A-matching items; items whose answer pair has
    no mirror ("(C) against (A)") are left out (lrt.stats.balance.Balance; off: the plain mean)."""
    n_random: int = 16
    """Random vectors of the same norm, the distribution every vector is judged against (p-value, percentile)."""
    eval_batch_size: int = 32
    """Rows (item × vector × α) per forward pass of the propensity grid."""
    bootstrap: int = 1000
    """Bootstrap resamples for the 95% confidence intervals of the curves."""
    seed: int = 0
    """Seed of every random choice (row order, initialisation, controls, random vectors)."""
    kl_sequences: int = 8
    """Neutral text sequences for the KL side effect."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        if self.alpha_max <= 0:
            raise ConfigError(f"alpha_max must be positive, got {self.alpha_max}", option="alpha_max")
        if self.alpha_steps < 3 or self.alpha_steps % 2 == 0:
            raise ConfigError(f"alpha_steps must be odd and at least 3 (0 and ±alpha_max), got {self.alpha_steps}",
                              option="alpha_steps")
        if self.search_items < 2:
            raise ConfigError(f"search_items must be at least 2, got {self.search_items}", option="search_items")
        if self.alphas is None:
            self.alphas = default_alphas(self.alpha_max, self.alpha_steps)
        self.alphas = sorted(float(a) + 0.0 for a in self.alphas)
        if not self.alphas:
            raise ConfigError("the α grid is empty; give at least one α (e.g. -0.2, 0, 0.2)", option="alphas")
        if 0 not in self.alphas:
            raise ConfigError("the α grid must contain 0 (the unsteered baseline that shifts are measured from)",
                              option="alphas")
        if self.search_random < 1:
            raise ConfigError(f"search_random must be at least 1, got {self.search_random}", option="search_random")
        if self.n_random < 0 or self.bootstrap < 1:
            raise ConfigError(f"n_random must be >= 0 and bootstrap >= 1 (got {self.n_random}, {self.bootstrap})")


@dataclass
class TestSetConfig:
    """The items a steering vector is evaluated on, and the capability check."""

    test: str | None = None
    """A/B test set: a data set name (caa:refusal is its test set; `lrt data list`) or a file (CAA format).
    Default: sentiment items (neutral prompts and held-out review openings)."""
    eval_corpus: str | None = None
    """Corpus with held-out reviews for the sentiment items and neutral text for the KL. Default: the held-out
    text shipped with lrt."""
    test_split: str = field(default="heldout", metadata={"choices": ("train", "heldout")})
    """Sentiment items: the corpus split the held-out reviews are drawn from."""
    allow_overlap: bool = False
    """Evaluate even when test items were among a vector's own examples (reported in the results); off: refuse."""
    lowercase: bool | None = None
    """Lower-case the sentiment prompts (default: only for the zoo models, trained on lower-cased reviews)."""
    chat: bool = False
    """Wrap questions in the tokenizer's chat template (instruct models)."""
    validation: str | None = None
    """A/B items the α search (and the study's layer search) chooses on, never judged on: a data set name or file.
    Default: the unused pairs of the native vector's own contrast set when it names one, else items split off
    the test set."""
    mmlu: str | None = None
    """A/B capability set (mmlu, truthfulqa, or a file): accuracy unsteered and at the largest α."""
    mmlu_items: int = 100
    """Items of the capability set used."""
    seed: int = 0
    """Seed of every random choice (row order, initialisation, controls, random vectors)."""

    def __post_init__(self):
        if self.mmlu_items < 1:
            raise ConfigError(f"mmlu_items must be at least 1, got {self.mmlu_items}", option="mmlu_items")
        if self.eval_corpus is None:
            from ..zoo import registry

            self.eval_corpus = str(registry.heldout_text())
        from ..data.registry import check

        check(self.test, "test", "test")
        check(self.validation, "test", "validation")
        check(self.mmlu, "test", "mmlu")
        check(self.eval_corpus, "corpus", "eval_corpus")


@dataclass
class StitchConfig:
    """Held-out text for next-token losses (stitched models, SAE reconstructions)."""

    eval_corpus: str | None = None
    """Text to score (JSONL(.gz) with a 'text' field, a text file or directory). Default: the text shipped with
    lrt. Only documents of the held-out split are used (the hash split the map or SAE was not fitted on)."""
    eval_tokens: int = 20_000
    """Held-out tokens to score."""
    eval_context: int = 128
    """Sequence length (tokens)."""
    eval_batch_size: int = 8
    """Sequences per forward pass."""
    eval_split_percent: float | None = None
    """The held-out share (%) that defines the held-out split (default: the map's or the harvest's own, so no
    scored document was fitted on)."""
    progress: bool = True
    """Show progress bars."""

    def __post_init__(self):
        if self.eval_tokens < 2 or self.eval_context < 3 or self.eval_batch_size < 1:
            raise ConfigError(f"eval_tokens must be >= 2, context >= 3 and batch size >= 1 (got {self.eval_tokens}, "
                              f"{self.eval_context}, {self.eval_batch_size})", option="eval_tokens")
