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
# Other pairs get the middle-block rule of `lrt.models.layers.default_layers` unless layers are given.
DEMO_PAIR = ("zoo-xs", "zoo-m")
DEMO_LAYERS = (0, 0)
DEMO_HARVEST = {"tokens": 60_000, "context": 128, "batch_size": 8}   # a 30-second job on 2 CPU cores


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
