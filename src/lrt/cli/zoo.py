"""``lrt zoo train`` and ``lrt zoo list``: the embedded model family."""

from __future__ import annotations

from ..zoo.training.config import TrainConfig
from .common import show
from .options import command


def train(cfg: TrainConfig) -> int:
    import torch

    from ..zoo.training.loop import train_family

    if cfg.threads:             # this process's own setting; worker processes set theirs
        torch.set_num_threads(cfg.threads)
    summary = train_family(cfg)
    show([[n, r["params_total"], r["params_non_embedding"], r["tokens_seen"], r["heldout_loss"]]
          for n, r in summary["models"].items()],
         ["model", "params", "non-embedding", "tokens", "held-out loss"], title=f"\nfamily written to {cfg.out}")
    return 0


def list_models(args) -> int:
    from .. import zoo

    rows = [[f"zoo-{n}", str(zoo.path(n))] for n in zoo.available()]
    show(rows or [["(none shipped)", ""]], ["model", "directory"])
    return 0 if rows else 1


def register(sub) -> None:
    z = sub.add_parser("zoo", help="the embedded model family").add_subparsers(dest="zoo_command", metavar="ZOO")
    command(z, "train", "train the family (tokenizer + Llama sizes); resumable", train, TrainConfig)
    command(z, "list", "list the shipped models and their directories", list_models)
