"""Handlers of the core CLI commands (``fit-map``, ``zoo``). Each parses nothing: it gets argparse's namespace."""

from __future__ import annotations

from .artifacts import ensure_writable
from .models import default_layers
from .errors import ConfigError
from .table import show


def default_corpus() -> str:
    """The text shipped with the package: the zoo's held-out split (never seen in training)."""
    from . import zoo

    return str(zoo.heldout_text())


def quiet_progress(args) -> None:
    """With --no-progress, also silence transformers' own bars (weight loading, GGUF conversion)."""
    if getattr(args, "no_progress", False):
        from transformers.utils import logging as hf_logging

        hf_logging.disable_progress_bar()


def load_pair(args):
    from .models import load_model
    from .tokenizer_check import check_tokenizers

    quiet_progress(args)
    src = load_model(args.source, dtype=args.dtype, device=args.device)
    tgt = load_model(args.target, dtype=args.dtype, device=args.device)
    check_tokenizers(src.tokenizer, tgt.tokenizer, src.name, tgt.name)
    return src, tgt


def harvest_config(args):
    from .harvest import HarvestConfig

    if args.tokens <= 0:
        raise ConfigError(f"--tokens must be positive, got {args.tokens}")
    return HarvestConfig(corpus=args.corpus or default_corpus(), tokens=args.tokens, context=args.context,
                         batch_size=args.batch_size, heldout_percent=args.heldout_percent,
                         skip_first=not args.keep_first_token, progress=not args.no_progress)


def fit_from_args(args, src, tgt):
    from .adamw import AdamWConfig
    from .fit import FitConfig, fit_map

    ls, lt = default_layers(src, tgt, args.source_layer, args.target_layer)
    cfg = FitConfig(ridge=args.ridge, method=args.method, max_norm_ratio=args.max_norm_ratio or None,
                    seed=args.seed, adamw=AdamWConfig(epochs=args.epochs, seed=args.seed,
                                                      progress=not args.no_progress))
    return fit_map(src, tgt, ls, lt, harvest_config(args), cfg)


def map_summary_rows(m) -> list[list]:
    h = m.meta["metrics"]["heldout"]
    rows = [["map", f"{m.source} L{m.source_layer} → {m.target} L{m.target_layer}"],
            ["method", m.meta["method"]],
            ["train / held-out rows", f"{m.meta['tokens']['train_rows']:,} / {m.meta['tokens']['heldout_rows']:,}"],
            ["excluded (massive norm)", m.meta["tokens"]["excluded_massive"]],
            ["held-out R² (all tokens)", h.get("r2")],
            ["held-out R² (< q99 norm)", h.get("r2_below_q99")],
            ["held-out MSE", h.get("mse")],
            ["held-out cosine", h.get("cosine_mean")],
            ["median norm source / target", f"{m.meta['norms']['source']['median']:.4g} / "
                                            f"{m.meta['norms']['target']['median']:.4g}"],
            ["seconds (harvest / fit)", f"{m.meta['seconds']['harvest']:.1f} / {m.meta['seconds']['fit']:.2f}"]]
    ctrl = m.meta["metrics"].get("shuffled_control_heldout")
    if ctrl:
        rows.insert(5, ["held-out R², shuffled control", ctrl.get("r2")])
    return rows


def fit_map_cmd(args) -> int:
    out = ensure_writable(args.out)
    src, tgt = load_pair(args)
    m = fit_from_args(args, src, tgt)
    m.save(out)
    show(map_summary_rows(m), title=f"\nmap saved to {out}/map.safetensors + map.json")
    return 0


def _parse_sizes(spec: str):
    from .zoo.train import DEFAULT_SIZES, ZooSize

    sizes = []
    for item in spec.split(","):
        item = item.strip()
        if item in DEFAULT_SIZES:
            sizes.append(DEFAULT_SIZES[item])
            continue
        try:
            name, wl, heads = item.split(":")
            width, layers = (int(v) for v in wl.lower().split("x"))
            sizes.append(ZooSize(name, width, layers, int(heads)))
        except ValueError:
            raise ConfigError(f"size {item!r} is neither one of {', '.join(DEFAULT_SIZES)} nor NAME:WIDTHxLAYERS:HEADS"
                              " (e.g. l:384x6:12)") from None
    return sizes


def zoo_train_cmd(args) -> int:
    from .zoo.train import TrainConfig, train_family

    cfg = TrainConfig(corpus=args.corpus, out=args.out, sizes=_parse_sizes(args.sizes), tokens=args.tokens,
                      vocab_size=args.vocab_size, seq_len=args.seq_len, batch_size=args.batch_size, lr=args.lr,
                      seed=args.seed, threads=args.threads, jobs=args.jobs, device=args.device,
                      overwrite=args.overwrite)
    summary = train_family(cfg)
    show([[n, r["params_total"], r["params_non_embedding"], r["tokens_seen"], r["heldout_loss"]]
          for n, r in summary["models"].items()],
         ["model", "params", "non-embedding", "tokens", "held-out loss"], title=f"\nfamily written to {args.out}")
    return 0


def zoo_list_cmd(args) -> int:
    from . import zoo

    rows = [[f"zoo-{n}", str(zoo.path(n))] for n in zoo.available()]
    show(rows or [["(none shipped)", ""]], ["model", "directory"])
    return 0 if rows else 1

