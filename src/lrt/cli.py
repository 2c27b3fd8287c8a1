"""The ``lrt`` command line: a thin layer over the Python API. ``python -m lrt`` is the same program."""

from __future__ import annotations

import argparse
import importlib
import sys
import warnings

from .errors import LRTError


def _model_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("models")
    g.add_argument("--source", default="zoo-xs", help="small model: hub id, local dir, .gguf file or zoo name")
    g.add_argument("--target", default="zoo-m", help="large model (same tokenizer)")
    g.add_argument("--source-layer", default=None, help="layer of the source (block output; 'embed' allowed)")
    g.add_argument("--target-layer", default=None, help="layer of the target")
    g.add_argument("--dtype", default="float32", help="float32 | bfloat16 | float16 | auto")
    g.add_argument("--device", default="cpu", help="cpu, cuda, cuda:1, ...")
    g.add_argument("--batch-size", type=int, default=8)
    g.add_argument("--context", type=int, default=256, help="packed sequence length")
    g.add_argument("--seed", type=int, default=0)
    g.add_argument("--no-progress", action="store_true", help="hide progress bars")


def _fit_flags(p: argparse.ArgumentParser) -> None:
    g = p.add_argument_group("map fitting")
    g.add_argument("--corpus", default=None, help="JSONL(.gz) with a 'text' field, text file, or HF data set name")
    g.add_argument("--tokens", type=int, default=200_000, help="tokens to harvest (train + held-out)")
    g.add_argument("--ridge", type=float, default=1e-6, help="ridge, relative to the mean eigenvalue of Cov(h_S)")
    g.add_argument("--method", default="closed-form", choices=["closed-form", "adamw"])
    g.add_argument("--epochs", type=int, default=4, help="AdamW epochs (--method adamw)")
    g.add_argument("--heldout-percent", type=float, default=10.0, help="share of documents held out")
    g.add_argument("--max-norm-ratio", type=float, default=10.0,
                   help="leave out of the fit tokens with norm > this × median (0 = keep all)")
    g.add_argument("--keep-first-token", action="store_true", help="keep position 0 (attention sink) in the fit")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="lrt", description="Linear representation transfer between language "
                                     "models of one family: fit affine maps, transfer steering vectors.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("fit-map", help="fit an affine map h_T ≈ A·h_S + p between two layers")
    _model_flags(p)
    _fit_flags(p)
    p.add_argument("--out", required=True, help="output directory (map.safetensors + map.json)")
    p.set_defaults(func="lrt.commands:fit_map_cmd")

    z = sub.add_parser("zoo", help="the embedded model family").add_subparsers(dest="zoo_command", metavar="ZOO")
    zt = z.add_parser("train", help="train the family (tokenizer + three Llama sizes)")
    zt.add_argument("--corpus", required=True)
    zt.add_argument("--out", required=True)
    zt.add_argument("--tokens", type=int, default=None, help="tokens per model (default: one epoch)")
    zt.add_argument("--sizes", default="xs,s,m", help="comma list of sizes, or NAME:WIDTHxLAYERS:HEADS entries")
    zt.add_argument("--vocab-size", type=int, default=8192)
    zt.add_argument("--seq-len", type=int, default=256)
    zt.add_argument("--batch-size", type=int, default=16)
    zt.add_argument("--lr", type=float, default=3e-3)
    zt.add_argument("--seed", type=int, default=0)
    zt.add_argument("--threads", type=int, default=None, help="torch threads per training process")
    zt.add_argument("--jobs", type=int, default=1, help="train sizes in this many processes at once (CPU)")
    zt.add_argument("--device", default="cpu", help="cpu, cuda, ...")
    zt.add_argument("--overwrite", action="store_true")
    zt.set_defaults(func="lrt.commands:zoo_train_cmd")
    z.add_parser("list", help="list the shipped models and their directories").set_defaults(
        func="lrt.commands:zoo_list_cmd")

    from .steering.cli import add_commands  # steering, evaluation, report, demo
    add_commands(sub, _model_flags, _fit_flags)
    return parser


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--alphas -0.2,0,0.2`` would read as a new option to argparse; make it ``--alphas=-0.2,0,0.2``."""
    out, i = [], 0
    while i < len(argv):
        if argv[i] == "--alphas" and i + 1 < len(argv) and argv[i + 1].startswith("-"):
            out.append(f"--alphas={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    if not hasattr(args, "func"):
        parser.print_help()
        return 1
    module, name = args.func.split(":")
    warnings.filterwarnings("default", module="lrt")
    try:
        return int(getattr(importlib.import_module(module), name)(args) or 0)
    except LRTError as e:
        print(f"lrt: error: {e}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("lrt: interrupted", file=sys.stderr)
        return 130
