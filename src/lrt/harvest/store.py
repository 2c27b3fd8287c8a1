"""The activation store: hidden states of any layers of one or more models, harvested once, as sharded safetensors.

Layout of a store directory::

    manifest.json            kind lrt_store, format version, models (name, layers, width), dtype, the harvest's
                             configuration and corpus fingerprint, token counts, one entry per shard (file, rows,
                             held-out rows, bytes, sha256), the stream position reached, complete or not
    shard-00000.safetensors  one tensor per column "<model index>.<layer>" ([rows, d], the store's dtype) and
                             "heldout" ([rows] uint8: 1 for rows of the map's held-out documents)

Rows are aligned across columns (row i of every column is the same token). :class:`ActivationStore` reads it back
as a stream of shards — bounded memory whatever the token count — checking each shard's sha256 before its rows
are used (a truncated or corrupted shard is refused by name, or skipped and counted with ``skip_bad``), and under
``torchrun`` each rank reads its own shards. Writing is :mod:`lrt.harvest.store_write`.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Iterator

import torch

from .. import distributed
from ..errors import StoreError
from ..io.files import sha256_file
from ..models.layers import layer_name

STORE_KIND = "lrt_store"
STORE_VERSION = 1
MANIFEST = "manifest.json"


def column(model_index: int, layer: int) -> str:
    """The tensor name of a model's layer in a shard."""
    return f"{model_index}.{layer_name(layer)}"


def read_manifest(path: str | Path) -> dict:
    path = Path(path)
    f = path / MANIFEST
    if not f.is_file():
        raise StoreError(f"{path} is not an activation store (no {MANIFEST}); write one with `lrt harvest --out "
                         f"{path}`", option="store")
    try:
        m = json.loads(f.read_text())
    except ValueError as e:
        raise StoreError(f"{f} is not valid JSON ({e}); the store is damaged: harvest it again", option="store") from None
    if m.get("kind") != STORE_KIND:
        raise StoreError(f"{f} is a {m.get('kind')!r} file, not an activation store", option="store")
    if m.get("format_version", 0) > STORE_VERSION:
        raise StoreError(f"{path} was written by a newer lrt (store format {m['format_version']} > {STORE_VERSION}); "
                         "upgrade lrt", option="store")
    return m


class ActivationStore:
    """A store written by ``lrt harvest`` (see the module docstring)."""

    def __init__(self, path: str | Path, verify: bool = True, skip_bad: bool = False, allow_incomplete: bool = False):
        self.path = Path(path)
        self.manifest = read_manifest(self.path)
        self.verify, self.skip_bad = verify, skip_bad
        self.bad: list[str] = []
        if not self.manifest.get("complete") and not allow_incomplete:
            raise StoreError(f"the activation store {str(self.path)!r} is incomplete (its harvest stopped after "
                             f"{self.manifest.get('rows', 0):,} rows); finish it with `lrt harvest ... --out "
                             f"{self.path} --resume`", option="store")

    @property
    def models(self) -> list[dict]:
        return self.manifest["models"]

    @property
    def rows(self) -> int:
        return int(self.manifest["rows"])

    def key(self, model: str | int, layer: int) -> str:
        """The column of ``model`` (its index in the store, or its name as recorded) at ``layer``."""
        names = [m["name"] for m in self.models]
        if isinstance(model, str):
            if model not in names:
                raise StoreError(f"the activation store {str(self.path)!r} holds {', '.join(map(repr, names))}, not "
                                 f"{model!r}", option="store")
            model = names.index(model)
        if not 0 <= model < len(self.models):
            raise StoreError(f"the activation store {str(self.path)!r} holds {len(names)} model(s); there is no "
                             f"model #{model}", option="store")
        if layer not in self.models[model]["layers"]:
            have = ", ".join(str(layer_name(x)) for x in self.models[model]["layers"])
            raise StoreError(f"the activation store {str(self.path)!r} holds layers {have} of {names[model]!r}, not "
                             f"{layer_name(layer)}; harvest that layer (lrt harvest --layers)", option="store")
        return column(model, layer)

    def width(self, key: str) -> int:
        i = int(key.split(".", 1)[0])
        return int(self.models[i]["d_model"])

    def check(self, shard: dict) -> bool:
        """Whether a shard's file is present and matches its recorded size and sha256; raises unless ``skip_bad``."""
        f = self.path / shard["file"]
        problem = None
        if not f.is_file():
            problem = "is missing"
        elif f.stat().st_size != shard["bytes"]:
            problem = f"is truncated or altered ({f.stat().st_size:,} bytes, the manifest says {shard['bytes']:,})"
        elif self.verify and sha256_file(f) != shard["sha256"]:
            problem = "is corrupted (its sha256 does not match the manifest)"
        if problem is None:
            return True
        if not self.skip_bad:
            raise StoreError(f"shard {f} {problem}; harvest it again, or pass --skip-bad-shards to leave it out "
                             "(counted in the output)", option="store")
        self.bad.append(shard["file"])
        return False

    def shards(self, split_ranks: bool = True, start: int = 0) -> Iterator[tuple[int, dict]]:
        """``(index, shard entry)`` of this rank's shards (all of them in one process), from shard ``start`` on."""
        for i, shard in enumerate(self.manifest["shards"]):
            if i >= start and (not split_ranks or distributed.mine(i)):
                yield i, shard

    def batches(self, keys: list[str], split_ranks: bool = True, start: int = 0
                ) -> Iterator[tuple[int, dict[str, torch.Tensor], torch.Tensor]]:
        """``(shard index, {key: float32 rows}, heldout mask)`` per verified shard; only ``keys`` are read."""
        for i, shard in self.shards(split_ranks, start):
            got = self.read(shard, keys)
            if got is not None:
                yield i, *got

    def parts(self, keys: list[str]) -> Iterator[tuple[int, dict[str, torch.Tensor], bool]]:
        """``(index, {key: rows}, heldout)``: each of this rank's shards split into its training rows (index
        ``2·shard``) and its held-out rows (``2·shard + 1``), empty parts left out — the batches a fit or a sweep
        folds in (the index seeds per-batch randomness, as a live harvest's batch index does)."""
        for i, cols, held in self.batches(keys):
            for part in (False, True):
                rows = held == part
                if rows.any():
                    yield 2 * i + part, {k: v[rows] for k, v in cols.items()}, part

    def read(self, shard: dict, keys: list[str]) -> tuple[dict[str, torch.Tensor], torch.Tensor] | None:
        """``({key: float32 rows}, heldout mask)`` of one shard after its check; ``None`` if skipped as bad."""
        from safetensors import safe_open

        if not self.check(shard):
            return None
        with safe_open(str(self.path / shard["file"]), "pt") as f:
            return {k: f.get_tensor(k).float() for k in keys}, f.get_tensor("heldout").bool()

    def summary(self) -> dict:
        """What a result built on this store records about it."""
        m = self.manifest
        return {"path": str(self.path), "models": m["models"], "rows": m["rows"], "dtype": m["dtype"],
                "corpus_fingerprint": m.get("corpus_fingerprint"), "shards": len(m["shards"]),
                "bad_shards_skipped": list(self.bad)}
