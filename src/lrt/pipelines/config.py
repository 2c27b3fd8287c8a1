"""The whole transfer experiment's configuration: one group per stage (torch-free)."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..evaluate.config import EvalConfig, TestSetConfig
from ..harvest.config import HarvestConfig
from ..maps.config import FitConfig
from ..models.config import LoadConfig, PairConfig
from ..steering.config import VectorConfig

# The demo's layer pair, from the sweep in docs/zoo.md (benchmarks/layer_sweep.py): of xs L0/L1 × m L0–L3,
# xs L0 → m L0 gives the largest transferred slope (1.21, 12 random vectors ≤ 0.17) and cosine to native 0.85.
# Other pairs get the middle-block rule of `lrt.models.layers.default_layers` unless layers are given (lrt study:
# StudyConfig.first_depth).
DEMO_PAIR = ("zoo-xs", "zoo-m")
DEMO_LAYERS = (0, 0)
DEMO_HARVEST = {"tokens": 60_000, "context": 128, "batch_size": 8}   # a 30-second job on 2 CPU cores
# The study's help for the pair's layers: its defaults are not the other commands' middle-block rule.
STUDY_LAYER_DOCS = {
    "source_layer": "Source layer (output of that block; 'embed' allowed): the layer search's first candidate. "
                    "Default: the block at --first-depth (with --target-layer alone: the source block at its "
                    "relative depth).",
    "target_layer": "Target layer: the layer search's first candidate. Default: the block at --first-depth (with "
                    "--source-layer alone: the target block at its relative depth).",
}


@dataclass
class ExperimentConfig:
    """Fit a map, compute a vector on both models, transfer it, evaluate native vs transferred vs random."""

    pair: PairConfig = field(default_factory=PairConfig)
    """The two models and the layer pair."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    harvest: HarvestConfig = field(default_factory=lambda: HarvestConfig(**DEMO_HARVEST),
                                   metadata={"defaults": DEMO_HARVEST})
    """The text the map is fitted on (the demo's budget: 60,000 tokens in 128-token sequences)."""
    fit: FitConfig = field(default_factory=FitConfig)
    """How the map is fitted."""
    vectors: VectorConfig = field(default_factory=VectorConfig)
    """What the steering vectors are computed from."""
    testset: TestSetConfig = field(default_factory=TestSetConfig)
    """What they are evaluated on."""
    eval: EvalConfig = field(default_factory=EvalConfig)
    """The α grid and random baselines."""
    rescale: bool = False
    """Rescale transferred vectors to ‖v‖ × the ratio of median token norms (target / source)."""

    def layers(self, src, tgt):
        """The layer pair: as given; else the demo's for the demo pair; else the relative-depth rule."""
        p = self.pair
        if (p.source_layer, p.target_layer) == (None, None) and (p.source, p.target) == DEMO_PAIR:
            return DEMO_LAYERS
        return p.layers(src, tgt)


STUDY_HARVEST = {"corpus": "lrt:text", "tokens": 20_000, "context": 128, "batch_size": 8}
STUDY_EVAL = {"alpha_search": True, "alpha_steps": 3, "n_random": 16, "search_items": 12, "search_random": 8}


@dataclass
class StudyConfig:
    """The transfer study: for each behaviour, a layer where the large model's own vector steers (chosen on
    validation items), a map that never saw the behaviour, the small model's vector carried over, a prediction,
    and the honest evaluation against random vectors on the test items."""

    behaviours: list[str] = field(default_factory=list)
    """Behaviours (repeatable): a data set name (caa:refusal — its generate set gives the vectors and validation
    items, its test set the test items) or GENERATE_FILE=TEST_FILE (A/B files; a generate file alone: its unused
    pairs are the test items)."""
    pair: PairConfig = field(default_factory=PairConfig, metadata={"docs": STUDY_LAYER_DOCS})
    """The two models; given layers are the first candidates of the layer search (default: --first-depth)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    chat: bool = False
    """Wrap questions in the tokenizer's chat template (instruct models)."""
    pairs: int = 60
    """Contrast pairs each behaviour's vectors are computed from (on both models), at first: see --max-pairs."""
    max_pairs: int = 240
    """Take more pairs, doubling from --pairs up to this many (and what the generate set spares), while the small
    model's vector at a candidate source layer is unstable (split-half cosine < 0.5,
    :data:`lrt.stats.balance.STABLE_SPLIT_HALF`; checked at each candidate before the layer search probes it). On
    the Qwen pair A/B sycophancy's went −0.28 → −0.43 → 0.64 over 60 / 120 / 240 pairs, and its native vector
    from no effect to p 7e-6 (docs/real-pair.md). At or below --pairs: always --pairs."""
    grow_native: bool = True
    """Also take more pairs (up to --max-pairs) while the large model's own vector at the candidate target layer is
    unstable (split-half cosine < 0.5), computed on the way (the layer search needs it anyway). On the Qwen pair
    the 1.5B's A/B and persona vectors are half as stable at L13 as at L17 (split-half 0.40 / 0.37 against
    0.74 / 0.72 on 30 pairs), and cos(A·v, native) there follows the two vectors' stability (docs/real-pair.md):
    at the middle blocks the native vector, not the map, limits the transfer."""
    test_items: int = 50
    """Test items per behaviour: the test set's first ones; see --test-fill where it has fewer."""
    test_fill: bool = True
    """Where a behaviour's test set has fewer than --test-items items, take the rest from its generate set's unused
    pairs (after the vector pairs and the validation items, half per matching answer), which neither the vectors,
    the α search nor the map ever saw; the record counts each source. The CAA test sets have 50 items: on the Qwen
    pair that left survival-instinct's transferred CI 0.004 short of the random maximum (docs/real-pair.md)."""
    layer_search: bool = True
    """Look for a target layer where the native vector steers forward on the validation items: the given layers
    or --first-depth first, then --candidate-depths in order; stop at the first that steers (p < 0.05 against the
    search's random vectors). The source layer follows at the same relative depth."""
    first_depth: float = 0.65
    """Where the layer search starts when neither --source-layer nor --target-layer is given: the target block at
    this relative depth (0–1), the source block at the same depth; 0: the other commands' middle-block rule. On the
    Qwen pair (24 → 28 blocks) 0.65 is L14 → L17: the large model's own A/B vector steered there on validation for
    5 of 7 behaviours, and the contrast map carries vectors better there than at the middle blocks L11 → L13 (mean
    cos(A·v, native): A/B 0.78 against 0.56, persona 0.78 against 0.53; docs/real-pair.md)."""
    candidate_depths: list[float] = field(default_factory=lambda: [0.5, 0.35, 0.8])
    """Relative depths (0–1) of the target layers the layer search tries after the first one."""
    fallback: str = field(default="best", metadata={"choices": ("best", "cached")})
    """Where no candidate steers on validation: 'best' takes the layer pair with the largest native z; 'cached' the
    largest z among the pairs whose text map and contrast pool OUT/cache already holds (where none is cached: as
    'best'). A new pair costs a text map and a pool (on the Qwen pair ~1 h on 2 CPU cores at L18 → L21) for a
    behaviour no layer steered on validation; the record names the rule and the largest z overall."""
    contrast_sets: list[str] = field(default_factory=lambda: ["default"])
    """The map's contrast pool ('default': the pool shipped with lrt); each behaviour's own family is left out."""
    contrast_pairs: int = 40
    """Pairs read from each contrast set of the pool."""
    harvest: HarvestConfig = field(default_factory=lambda: HarvestConfig(**STUDY_HARVEST),
                                   metadata={"defaults": STUDY_HARVEST})
    """The text the map's prior (the text map) is fitted on."""
    fit: FitConfig = field(default_factory=FitConfig)
    """How the text map is fitted."""
    eval: EvalConfig = field(default_factory=lambda: EvalConfig(**STUDY_EVAL), metadata={"defaults": STUDY_EVAL})
    """The α search (on validation items) and the random baselines of the verdict."""

    def __post_init__(self):
        from ..errors import ConfigError

        if self.pairs < 2 or self.test_items < 2:
            raise ConfigError(f"pairs and test_items must be at least 2 (got {self.pairs}, {self.test_items})",
                              option="pairs")
        if any(not 0 < d <= 1 for d in self.candidate_depths):
            raise ConfigError(f"candidate depths must be in (0, 1], got {self.candidate_depths}",
                              option="candidate_depths")
        if not 0 <= self.first_depth <= 1:
            raise ConfigError(f"--first-depth must be in [0, 1] (0: the middle-block rule), got {self.first_depth}",
                              option="first_depth")
