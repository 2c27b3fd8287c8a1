"""``lrt probe train | compare``: linear probes on one model, and carried across models through the maps."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..models.config import LoadConfig
from ..models.layers import LayerSpec
from ..report.tables import short_name
from .common import Output, OutputRun, record, show, writes_output
from .options import command


@dataclass
class ProbeTask:
    """A labelled task from a corpus whose records carry the label."""

    task: str = "sentiment"
    """sentiment (movie reviews), genre:X:Y (Brown categories, letters a–r) or source (the document source)."""
    corpus: str = "lrt:text"
    """JSONL(.gz) with text, doc_id and source fields (the labels come from them); default: the corpus sample
    shipped with lrt."""

    def __post_init__(self):
        from ..data.registry import check

        check(self.corpus, "corpus", "corpus")
    per_class: int = 300
    """At most this many documents per class (seeded choice); 30% of them (by document hash) are the test split."""
    max_tokens: int = 256
    """Each document's last this-many tokens are mean-pooled into the probe's features."""
    seed: int = 0
    """Seed of every random choice (document order, row order, initialisation, controls, random vectors)."""


@dataclass
class ProbeTrainRun(OutputRun):
    """Train a linear probe (logistic, L2 by cross-validation, class-balanced) on one layer of a model."""

    model: str
    """Model: hub id (org/name), local directory, .gguf file or zoo name."""
    layer: LayerSpec
    """Layer (output of that block, or 'embed')."""
    out: str
    """Output directory (probe.safetensors + probe.json + config.json)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""
    data: ProbeTask = field(default_factory=ProbeTask)
    """The labelled task."""


@writes_output
def run_train(cfg: ProbeTrainRun, out: Output) -> int:
    from ..data.labels import labelled_documents
    from ..probes.features import pooled_states
    from ..probes.probe import fit_probe

    d = cfg.data
    docs = labelled_documents(d.corpus, d.task, per_class=d.per_class, seed=d.seed)
    lm = cfg.load.load(cfg.model)
    li = lm.layer_index(cfg.layer)
    tr, te = [x for x in docs if x["split"] == "train"], [x for x in docs if x["split"] == "test"]
    probe = fit_probe(pooled_states(lm, li, [x["text"] for x in tr], d.max_tokens), [x["label"] for x in tr],
                      lm.name, cfg.layer, seed=d.seed)
    res = probe.evaluate(pooled_states(lm, li, [x["text"] for x in te], d.max_tokens), [x["label"] for x in te])
    probe.meta.update({"task": d.task, "corpus": d.corpus, "test": res})
    w = out.open()
    probe.save(w)
    record(w, cfg)
    show([[lm.name, cfg.layer, d.task, len(tr), res["n"], res["accuracy"], res["auroc"], probe.meta["l2"]]],
         ["model", "layer", "task", "train docs", "test docs", "accuracy", "AUROC", "L2"], title=f"\nprobe saved to {out}")
    return 0


@dataclass
class ProbeCompareRun(OutputRun):
    """A probe trained on the small model, carried to the large one through the maps (up: weights through A↑⁺;
    down: large states mapped down), against a native probe, a random projection of equal rank, and chance."""

    up: str
    """Map directory small → large (its models and layers are used; lrt fit-map --both also writes the down map)."""
    out: str
    """Output directory (results.json + config.json)."""
    down: str | None = None
    """Map directory large → small (default: UP/inverse if it exists)."""
    sae: list[str] = field(default_factory=list)
    """SAEs of the large model at the map's target layer (repeatable; e.g. its native SAE and a transferred one):
    adds SAEBench-style k-sparse probes on their latents (k = 1, 2, 5)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    data: ProbeTask = field(default_factory=ProbeTask)
    """The labelled task."""


@writes_output
def run_compare(cfg: ProbeCompareRun, out: Output) -> int:
    from ..data.labels import labelled_documents
    from ..io.files import atomic_write_text, to_json
    from ..maps.affine import AffineMap, load_inverse
    from ..pipelines.probes import compare_probes

    up = AffineMap.load(cfg.up)
    down = load_inverse(up, cfg.up, cfg.down, option="down")     # the inverse of this very map
    up.check_model_configs()                                       # and it fits the models: before loading them
    d = cfg.data
    docs = labelled_documents(d.corpus, d.task, per_class=d.per_class, seed=d.seed)   # bad task: before loading
    small = cfg.load.load(up.source)
    large = cfg.load.load(up.target)
    r = {"task": d.task, "corpus": d.corpus, **compare_probes(small, large, up, down, docs, d.max_tokens, d.seed,
                                                                 progress=True)}
    if cfg.sae:
        from ..sae.formats import load_sae
        from ..pipelines.probes import sparse_probes

        saes = {path: load_sae(path) for path in cfg.sae}
        r["sparse_probes"] = sparse_probes(large, large.layer_index(up.target_layer), saes, docs,
                                           max_tokens=d.max_tokens, seed=d.seed)
    w = out.open()
    atomic_write_text(w / "results.json", to_json(r))
    record(w, cfg)
    show([[x["probe"], short_name(x["model"]), x["n"], x["accuracy"], x["auroc"]] for x in r["rows"]],
         ["probe", "applied to", "test docs", "accuracy", "AUROC"],
         title=f"\nprobes for {d.task}: {short_name(up.source)} L{up.source_layer} → {short_name(up.target)} "
               f"L{up.target_layer} (test split: {sum(r['split']['test'].values())} documents)")
    if r.get("sparse_probes"):
        show([[x["sae"], x["k"], x["accuracy"], x["auroc"]] for x in r["sparse_probes"]],
             ["SAE", "k latents", "accuracy", "AUROC"], title="\nk-sparse probes on SAE latents (large model)")
    return 0


def register(sub) -> None:
    s = sub.add_parser("probe", help="linear probes: train on a model, compare across models"
                       ).add_subparsers(dest="probe_command", metavar="PROBE")
    command(s, "train", "train a linear probe on one layer of a model", run_train, ProbeTrainRun)
    command(s, "compare", "a small model's probe carried to the large model vs native, random and chance",
            run_compare, ProbeCompareRun)
