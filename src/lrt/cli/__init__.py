"""The ``lrt`` command line: one module per command group, each turning flags into a config and the config
into library calls. ``python -m lrt`` is the same program.

A new command is a module here with a ``register(subparsers)`` function, added to :data:`COMMANDS`.
"""

from __future__ import annotations

import argparse
import re
import sys
import warnings

from .. import __version__
from .. import distributed
from ..errors import ConfigError, DistributedError, LRTError
from .common import print_error
from .options import Parser
from . import data, demo, evaluate, fit_map, generate, harvest, probe, report, sae, steer, study, sweep, zoo

DATA_PARALLEL = ("fit-map", "sweep-layers", "sae train")
"""Commands that split their work over ``torchrun`` ranks; the others refuse to be launched by it."""

COMMANDS = (harvest, fit_map, sweep, steer, evaluate, study, sae, probe, report, generate, demo, zoo, data)


def build_parser() -> argparse.ArgumentParser:
    parser = Parser(prog="lrt", description="Linear representation transfer between language models of one family: "
                    "fit affine maps, transfer steering vectors.")
    parser.add_argument("--version", action="version", version=f"lrt {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS:
        module.register(sub)
    return parser


_NEGATIVE = re.compile(r"^-[\d.]")


def _join_negative_values(argv: list[str]) -> list[str]:
    """``--alphas -0.2,0,0.2`` would read as a new option to argparse; make it ``--alphas=-0.2,0,0.2``."""
    out, i = [], 0
    while i < len(argv):
        if argv[i].startswith("--") and "=" not in argv[i] and i + 1 < len(argv) and _NEGATIVE.match(argv[i + 1]):
            out.append(f"{argv[i]}={argv[i + 1]}")
            i += 2
        else:
            out.append(argv[i])
            i += 1
    return out


def _deepest(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The parser of the last (sub)command named on the command line."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction) and getattr(args, action.dest, None) in action.choices:
            return _deepest(action.choices[getattr(args, action.dest)], args)
    return parser


def _device_of(args: argparse.Namespace) -> str:
    """The device a command was given (for the process group's backend), from its parsed flags."""
    for k, v in vars(args).items():
        if k.endswith("device") and isinstance(v, str):
            return v
    return "cpu"


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args, extra = parser.parse_known_args(_join_negative_values(list(sys.argv[1:] if argv is None else argv)))
    if extra:                                    # named by the subcommand they were given to
        _deepest(parser, args).error(f"unrecognized arguments: {' '.join(extra)}")
    if not hasattr(args, "handler"):         # `lrt` or `lrt zoo` alone: the help of what was given
        _deepest(parser, args).print_help()
        return 2
    warnings.filterwarnings("default", module="lrt")
    try:
        if distributed.launched():                 # torchrun: join the process group (gloo on CPU, nccl on GPUs)
            name = " ".join(x for x in (args.command, getattr(args, "sae_command", None)) if x)
            if name not in DATA_PARALLEL:
                raise ConfigError(f"lrt {name} runs in one process; launch it without torchrun (data-parallel "
                                  f"commands: {', '.join('lrt ' + c for c in DATA_PARALLEL)})")
            distributed.setup(_device_of(args))
        return int(args.handler(args) or 0)
    except LRTError as e:
        flag = f" (--{e.option.replace('_', '-')})" if getattr(e, "option", None) else ""
        print_error(f"{e}{flag}", every_rank=isinstance(e, DistributedError))    # torchrun: one line, rank 0's
        return 2
    except KeyboardInterrupt:
        print("lrt: interrupted", file=sys.stderr)
        return 130
    finally:
        if distributed.launched():
            distributed.teardown()
