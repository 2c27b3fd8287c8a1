"""``lrt sae train | transfer | evaluate``: SAEs on the small model, carried to the large one."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..evaluate.config import StitchConfig
from ..harvest.config import HarvestConfig
from ..models.config import LoadConfig
from ..models.layers import LayerSpec
from ..report.tables import short_name
from ..sae.config import SAETrainConfig
from . import sae_study
from .common import Output, OutputRun, quiet_progress, record, show, writes_output
from .options import command


@dataclass
class SAETrainRun(OutputRun):
    """Train a TopK SAE on one layer of a model, on activations streamed from a corpus."""

    model: str
    """Model: hub id (org/name), local directory, .gguf file or zoo name."""
    layer: LayerSpec
    """Layer (output of that block, or 'embed')."""
    out: str
    """Output directory: the SAE in SAELens format (cfg.json + sae_weights.safetensors), metrics.json,
    curve.png, config.json."""
    sparsify_format: bool = False
    """Also write the SAE in EleutherAI sparsify's format, under OUT/sparsify/layers.L."""
    store: str | None = None
    """Train on the rows of an activation store (lrt harvest) holding this model's layer, instead of running the
    model (which is still loaded for the final Δloss)."""
    skip_bad_shards: bool = False
    """With --store: leave out shards whose sha256 does not match (counted in metrics.json) instead of stopping."""
    resume: bool = False
    """Continue a killed run from OUT/checkpoint.safetensors (written every --checkpoint-tokens tokens)."""
    init: str | None = None
    """Start from this SAE of the same model and layer (e.g. lrt sae transfer's output) instead of the tied random
    initialisation; its latents and k are kept."""
    refit_tokens: int = 0
    """With --init: first refit its decoder in closed form on this many of the model's training tokens given its
    codes, and complete a transferred encoder outside the down map's image (lrt.sae.transfer.refit_decoder: a
    transferred SAE's better start; 0: none)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""
    harvest: HarvestConfig = field(default_factory=HarvestConfig)
    """The activations: corpus, token budget (training and held-out split), packing."""
    sae: SAETrainConfig = field(default_factory=SAETrainConfig)
    """The SAE and its training recipe."""
    stitch: StitchConfig = field(default_factory=StitchConfig)
    """The held-out text of the final metrics (FVU, L0, dead latents, Δloss)."""


@writes_output
def run_train(cfg: SAETrainRun, out: Output) -> int:
    from ..errors import ConfigError, DimensionMismatchError
    from ..evaluate.sae_metrics import delta_loss_probe, sae_metrics
    from ..io.files import atomic_write_text, to_json
    from ..models.layers import layer_name
    from ..sae.formats import load_sae, save_saelens, save_sparsify
    from ..report.sae import curve_png
    from ..report.tables import percent
    from ..sae.train import train_sae, train_sae_from_store

    quiet_progress(cfg.harvest.progress)
    if cfg.refit_tokens and (not cfg.init or cfg.store):
        raise ConfigError("--refit-tokens refits the decoder of an --init SAE on the live model's states (not with "
                          "--store)", option="refit_tokens")
    init = load_sae(cfg.init) if cfg.init else None
    lm = cfg.load.load(cfg.model)
    li = lm.layer_index(cfg.layer)
    if init is not None:
        init.check_input(lm.d_model)
        if init.meta.get("layer") is not None and str(init.meta["layer"]) != str(layer_name(li)):
            raise DimensionMismatchError(f"the --init SAE is for layer {init.meta['layer']}, not {layer_name(li)}")
    else:
        cfg.sae.n_latents(lm.d_model)                    # k < latents, before any work
    if init is not None and cfg.refit_tokens:
        from dataclasses import replace

        from ..harvest.paired import stream_rows
        from ..sae.transfer import refit_decoder

        init, info = refit_decoder(init, stream_rows(lm, li, replace(cfg.harvest, progress=False)), cfg.refit_tokens,
                                   skip_heldout=cfg.sae.eval_rows)    # not the rows the metrics are measured on
        comp = info["encoder_completion"]
        print(f"refitted on {info['rows']:,} rows: held-out FVU {info['heldout_fvu_before']} → "
              f"{info['heldout_fvu_after']}" + (f" (encoder completed, γ {comp['gamma']})" if comp else "") +
              f", {info['flops']:.3g} FLOPs")
    ckpt = None
    if cfg.sae.checkpoint_tokens or cfg.resume:
        ckpt = out.open() / "checkpoint.safetensors"
    probe = delta_loss_probe(lm, cfg.stitch, cfg.sae.delta_loss_tokens, cfg.harvest.heldout_percent)
    if cfg.store:
        from ..harvest.store import ActivationStore

        st = ActivationStore(cfg.store, verify=False)
        name = lm.name if lm.name in [m["name"] for m in st.models] else 0 if len(st.models) == 1 else lm.name
        res = train_sae_from_store(cfg.store, li, cfg.sae, name, init, ckpt, cfg.resume, cfg.harvest.progress,
                                   cfg.skip_bad_shards, probe)
    else:
        res = train_sae(lm, li, cfg.harvest, cfg.sae, init, ckpt, cfg.resume, probe)
    from .. import distributed
    from ..sae.checkpoint import rank_path

    if not distributed.is_main():                        # torchrun: rank 0 measures and writes
        if ckpt is not None:
            rank_path(ckpt).unlink(missing_ok=True)
        return 0
    final = sae_metrics(lm, res.sae, cfg.stitch, cfg.harvest.heldout_percent)
    d = out.open()
    save_saelens(res.sae, d)
    if cfg.sparsify_format:
        save_sparsify(res.sae, d / "sparsify" / f"layers.{cfg.layer}")
    atomic_write_text(d / "metrics.json", to_json({"history": res.history, "final": final,
                                                      "flops_per_step": res.flops_per_step, "steps": res.steps,
                                                      "tokens": res.tokens, "seconds": res.seconds}))
    curve_png(res.history, d / "curve.png")
    record(d, cfg)
    if ckpt is not None:
        rank_path(ckpt).unlink(missing_ok=True)          # the run finished: its outputs replace the checkpoint
    show([[lm.name, res.sae.meta["layer"], res.sae.d_sae, res.sae.k, res.tokens, res.steps,
           f"{res.sae.meta['flops']:.3g}", final["fvu"], final["l0"], percent(final["dead_fraction"]),
           final["delta_loss"]]],
         ["model", "layer", "latents", "k", "tokens", "steps", "FLOPs", "FVU", "L0", "dead (%)", "Δloss (nats)"],
         title=f"\nSAE saved to {out} (SAELens format); held-out metrics on {final['tokens']:,} tokens")
    return 0


@dataclass
class SAETransferRun(OutputRun):
    """Carry a small model's SAE to the large model through the up and down maps of one layer pair."""

    sae: str
    """The small model's SAE folder (SAELens, sparsify or GemmaScope format)."""
    up: str
    """Map directory small → large (lrt fit-map --both writes it, with the down map in UP/inverse)."""
    out: str
    """Output directory: the large model's SAE in SAELens format, metrics.json, config.json."""
    down: str | None = None
    """Map directory large → small (default: UP/inverse)."""
    evaluate: bool = True
    """Measure the SAE on the small model and the transferred SAE on the large one (FVU, L0, dead, Δloss)."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the models are loaded."""
    stitch: StitchConfig = field(default_factory=StitchConfig)
    """The held-out text of the metrics."""


@writes_output
def run_transfer(cfg: SAETransferRun, out: Output) -> int:
    from ..evaluate.sae_metrics import sae_metrics
    from ..io.files import atomic_write_text, to_json
    from ..maps.affine import AffineMap, load_inverse
    from ..report.tables import percent
    from ..sae.formats import load_sae, save_saelens
    from ..sae.transfer import transfer_sae

    quiet_progress(cfg.stitch.progress)
    sae = load_sae(cfg.sae)
    up = AffineMap.load(cfg.up)
    down = load_inverse(up, cfg.up, cfg.down, option="down", required=True)
    big = transfer_sae(sae, up, down)
    rows, result = [], {"maps": big.meta["maps"]}
    if cfg.evaluate:
        split = (up.meta.get("harvest") or {}).get("heldout_percent", 10.0)
        small_lm = cfg.load.load(up.source)
        large_lm = cfg.load.load(up.target)
        if sae.meta.get("layer") is None:
            sae.meta["layer"] = up.source_layer
        result["source"] = sae_metrics(small_lm, sae, cfg.stitch, split)
        result["transferred"] = sae_metrics(large_lm, big, cfg.stitch, split)
        rows = [[short_name(r["model"]), r["layer"], r["fvu"], r["l0"], percent(r["dead_fraction"]), r["delta_loss"]]
                for r in (result["source"], result["transferred"])]
    d = out.open()
    save_saelens(big, d)
    atomic_write_text(d / "metrics.json", to_json(result))
    record(d, cfg)
    show(rows or [[short_name(big.meta["model"]), big.meta["layer"], "—", "—", "—", "—"]],
         ["model", "layer", "FVU", "L0", "dead (%)", "Δloss (nats)"],
         title=f"\ntransferred SAE saved to {out} (SAELens format): the SAE on its own model, then zero-shot on "
               "the large one")
    return 0


@dataclass
class SAEEvaluateRun:
    """Measure an SAE on a model: FVU, L0, dead latents and Δloss on held-out text."""

    sae: str
    """SAE folder (SAELens, sparsify or GemmaScope format)."""
    model: str
    """The model the SAE reads (its layer comes from the SAE's hook name, or --layer)."""
    layer: LayerSpec | None = None
    """The layer, when the SAE's files do not say it."""
    load: LoadConfig = field(default_factory=LoadConfig)
    """How the model is loaded."""
    stitch: StitchConfig = field(default_factory=StitchConfig)
    """The held-out text."""


def run_evaluate(cfg: SAEEvaluateRun) -> int:
    from ..errors import ConfigError
    from ..evaluate.sae_metrics import sae_metrics
    from ..report.tables import percent
    from ..sae.formats import load_sae

    quiet_progress(cfg.stitch.progress)
    sae = load_sae(cfg.sae)
    if cfg.layer is not None:
        sae.meta["layer"] = cfg.layer
    if sae.meta.get("layer") is None:
        raise ConfigError(f"the SAE's files do not say its layer ({sae.meta.get('layer_note')}); give it",
                          option="layer")
    r = sae_metrics(cfg.load.load(cfg.model), sae, cfg.stitch)
    show([[short_name(r["model"]), r["layer"], r["fvu"], r["l0"], percent(r["dead_fraction"]), r["ce"],
           r["delta_loss"]]],
         ["model", "layer", "FVU", "L0", "dead (%)", "CE (nats)", "Δloss (nats)"],
         title=f"\n{r['tokens']:,} held-out tokens")
    return 0


def register(sub) -> None:
    s = sub.add_parser("sae", help="sparse autoencoders: train, transfer to the large model, evaluate"
                       ).add_subparsers(dest="sae_command", metavar="SAE")
    command(s, "train", "train a TopK SAE on one layer of a model", run_train, SAETrainRun)
    command(s, "transfer", "carry an SAE to the large model through the up and down maps", run_transfer,
            SAETransferRun)
    command(s, "evaluate", "FVU, L0, dead latents and Δloss of an SAE on a model", run_evaluate, SAEEvaluateRun)
    sae_study.register(s)
