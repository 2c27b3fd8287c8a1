"""``lrt harvest``: hidden states of any layers of one or more models into a sharded activation store."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..harvest.config import HarvestConfig
from ..models.config import LoadConfig
from .common import Output, OutputRun, quiet_progress, record, show, writes_output
from .options import command


@dataclass
class HarvestRun(OutputRun):
    """Run a corpus through one or more models once and store the hidden states of the requested layers
    (sharded safetensors + manifest.json with per-shard sha256); lrt fit-map, lrt sweep-layers and lrt sae train
    read it with --store instead of running the models again. Resumable: an interrupted harvest goes on with --resume."""

    out: str
    """Store directory (manifest.json + shard-NNNNN.safetensors)."""
    model: list[str] = field(default_factory=list)
    """A model (repeatable: --model SMALL --model LARGE; all share the first one's tokenizer): hub id, local
    directory, .gguf file or zoo name."""
    layers: list[str] = field(default_factory=list)
    """Layers per model (repeatable, in --model order; one value applies to every model): all | blocks | 0,2,5 |
    3-7 | 0-23:4 | embed."""
    shard_rows: int = 65_536
    """Token rows per shard (and per checkpoint): a killed harvest loses at most one shard's work."""
    store_dtype: str = "float32"
    """Dtype of the stored rows: float32 | float16 | bfloat16 (statistics are always accumulated in float64)."""
    resume: bool = False
    """Continue an interrupted harvest in OUT (same models, layers and options); the result is identical to an
    uninterrupted run."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    """The text harvested."""


@writes_output
def run(cfg: HarvestRun, out: Output) -> int:
    from ..errors import ConfigError
    from ..harvest.store_write import STORE_DTYPES, write_store
    from ..models.layers import layer_name, parse_layer_list

    if not cfg.model:
        raise ConfigError("name at least one model (--model)", option="model")
    if len(cfg.layers) not in (1, len(cfg.model)):
        raise ConfigError(f"give one --layers for every model ({len(cfg.model)}) or one for all", option="layers")
    if cfg.store_dtype not in STORE_DTYPES:
        raise ConfigError(f"store dtype must be one of {', '.join(STORE_DTYPES)}", option="store_dtype")
    if cfg.shard_rows < 1:
        raise ConfigError("shard_rows must be positive", option="shard_rows")
    quiet_progress(cfg.harvest.progress)
    models = [cfg.load.load(m) for m in cfg.model]
    specs = cfg.layers * len(models) if len(cfg.layers) == 1 else cfg.layers
    layers = [parse_layer_list(s, lm.n_layers, lm.name) for s, lm in zip(specs, models)]
    m = write_store(models, layers, cfg.harvest, out.open(), cfg.shard_rows, cfg.store_dtype, cfg.resume)
    record(out.target, cfg)
    show([[x["name"], ", ".join(str(layer_name(i)) for i in x["layers"]), x["d_model"]] for x in m["models"]],
         ["model", "layers", "width"], title=f"\nactivation store written to {out}/: {m['rows']:,} rows "
         f"({m['heldout_rows']:,} held out) in {len(m['shards'])} shards, {m['dtype']}")
    return 0


def register(sub) -> None:
    command(sub, "harvest", "store hidden states of any layers of one or more models (sharded, resumable)", run,
            HarvestRun)
