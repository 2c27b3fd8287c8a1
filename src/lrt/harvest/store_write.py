"""Write an activation store (see :mod:`lrt.harvest.store`), resumably.

The packed corpus runs through each model once (early stop after its deepest requested layer); rows collect until
a shard is full, then the shard is written atomically (temporary file, fsync, rename) and the manifest after it,
recording the stream position reached. That manifest is the checkpoint: a harvest killed at any moment leaves a
valid store of whole shards, and ``resume`` re-packs the stream (tokenization only) up to that position and goes
on — the finished store is byte-identical to an uninterrupted one.
"""

from __future__ import annotations

import hashlib
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors.torch import save_file
from tqdm.auto import tqdm

from ..errors import ConfigError, StoreError
from ..io.files import atomic_path, atomic_write_text, sha256_file, to_json
from ..models.load import LoadedModel
from .capture import keep_mask, run_with_capture
from .config import HarvestConfig
from .paired import _rows, pack_sequences
from .store import MANIFEST, STORE_KIND, STORE_VERSION, column, read_manifest

STORE_DTYPES = {"float32": torch.float32, "float16": torch.float16, "bfloat16": torch.bfloat16}


def write_store(models: list[LoadedModel], layers: list[list[int]], harvest: HarvestConfig, out: str | Path,
                shard_rows: int = 65_536, dtype: str = "float32", resume: bool = False) -> dict:
    """Harvest ``layers[i]`` of ``models[i]`` (one tokenizer: the first model's) into the store ``out``; returns the
    manifest. ``resume`` continues a store whose harvest was interrupted (same models, layers and configuration)."""
    if dtype not in STORE_DTYPES:
        raise ConfigError(f"store dtype must be one of {', '.join(STORE_DTYPES)}, got {dtype!r}", option="dtype")
    out = Path(out)
    fresh = _manifest(models, layers, harvest, dtype, shard_rows)
    if resume:
        m = read_manifest(out)
        for key in ("models", "harvest", "dtype", "shard_rows"):
            if m[key] != fresh[key]:
                raise StoreError(f"cannot resume the activation store {str(out)!r}: it was harvested with another "
                                 f"{key} ({m[key]!r}, now {fresh[key]!r}); use the same options or a new --out",
                                 option="resume")
        if m["complete"]:
            return m
    else:
        if (out / MANIFEST).exists():
            raise StoreError(f"the output directory {str(out)!r} already holds an activation store; pass --resume "
                             "to finish it, or choose a new --out", option="out")
        out.mkdir(parents=True, exist_ok=True)
        m = fresh
    done = m["batches_done"]
    fp = hashlib.sha256()
    tally: dict = {}
    pending: dict[str, list[torch.Tensor]] = {}
    held_rows: list[torch.Tensor] = []
    tokens = m["tokens_done"]
    t0 = time.time()
    i = -1
    with tqdm(total=harvest.tokens, initial=min(m["tokens_done"], harvest.tokens), unit="tok", unit_scale=True,
              desc="harvest", disable=not harvest.progress) as bar:
        for i, (ids, mask, held) in enumerate(pack_sequences(harvest, models[0].tokenizer, tally)):
            fp.update(ids.numpy().tobytes())
            if i < done:                              # written before the interruption: tokenization only
                continue
            keep = keep_mask(mask, skip_first=not harvest.keep_first_token)
            n = int(keep.sum())
            for mi, (lm, ls) in enumerate(zip(models, layers)):
                hs = run_with_capture(lm, ls, ids.to(lm.device), mask.to(lm.device), early_stop=harvest.early_stop)
                for layer, h in hs.items():
                    rows = _rows(h, keep.to(lm.device), lm.name, layer).to("cpu", STORE_DTYPES[dtype])
                    pending.setdefault(column(mi, layer), []).append(rows)
            held_rows.append(torch.full((n,), int(held), dtype=torch.uint8))
            tokens += int(mask.sum())
            bar.update(min(int(mask.sum()), max(0, bar.total - bar.n)))
            if sum(len(h) for h in held_rows) >= shard_rows:
                _flush(out, m, pending, held_rows, i + 1, tokens, fp)
                pending, held_rows = {}, []
    if held_rows:
        _flush(out, m, pending, held_rows, i + 1, tokens, fp)
    m.update(complete=True, corpus_fingerprint=fp.hexdigest(), tally=tally,
             seconds=round(m.get("seconds", 0) + time.time() - t0, 2))
    atomic_write_text(out / MANIFEST, to_json(m))
    return m


def _manifest(models, layers, harvest: HarvestConfig, dtype: str, shard_rows: int) -> dict:
    if len(models) != len(layers):
        raise ConfigError(f"{len(models)} models but {len(layers)} layer lists", option="layers")
    if harvest.align != "none":
        raise ConfigError("an activation store keeps the token rows of one tokenizer; fit across tokenizers from the "
                          "models (lrt fit-map --align chars)", option="align")
    for lm in models[1:]:
        from ..models.tokenizer_check import check_tokenizers

        check_tokenizers(models[0].tokenizer, lm.tokenizer, models[0].name, lm.name)
    return {"kind": STORE_KIND, "format_version": STORE_VERSION,
            "models": [{"name": lm.name, "layers": sorted(set(ls)), "d_model": lm.d_model}
                       for lm, ls in zip(models, layers)],
            "dtype": dtype, "shard_rows": shard_rows,
            "harvest": {k: v for k, v in asdict(harvest).items() if k != "progress"},
            "rows": 0, "heldout_rows": 0, "tokens_done": 0, "batches_done": 0, "shards": [], "complete": False}


def _flush(out: Path, m: dict, pending: dict, held_rows: list, batches_done: int, tokens: int, fp) -> None:
    """Write one shard, then the manifest that counts it (the checkpoint)."""
    name = f"shard-{len(m['shards']):05d}.safetensors"
    tensors = {k: torch.cat(v).contiguous() for k, v in pending.items()}
    tensors["heldout"] = torch.cat(held_rows)
    with atomic_path(out / name) as tmp:
        save_file(tensors, str(tmp))
    f = out / name
    n, nh = len(tensors["heldout"]), int(tensors["heldout"].sum())
    m["shards"].append({"file": name, "rows": n, "heldout_rows": nh, "bytes": f.stat().st_size,
                        "sha256": sha256_file(f)})
    m.update(rows=m["rows"] + n, heldout_rows=m["heldout_rows"] + nh, batches_done=batches_done, tokens_done=tokens,
             stream_sha256_so_far=fp.copy().hexdigest())
    atomic_write_text(out / MANIFEST, to_json(m))
