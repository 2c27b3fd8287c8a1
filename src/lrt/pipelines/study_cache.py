"""What ``lrt study`` computes once and shares across behaviours: the models, the text map of each layer pair and
the contrast pool's differences at it (both cached under ``OUT/cache`` and reused on ``--resume``)."""

from __future__ import annotations

import functools
import hashlib
import json
import time
from dataclasses import asdict
from pathlib import Path

import torch
from safetensors import safe_open
from safetensors.torch import save_file

from ..errors import ConfigError, OutputDirError
from ..io.config import flatten
from ..io.files import atomic_path, atomic_write_text, ensure_writable, to_json
from ..maps.affine import AffineMap
from ..maps.contrast import resolve_sets, set_differences, set_fingerprint
from ..harvest.config import HarvestConfig
from ..maps.config import FitConfig
from ..maps.fit import fit_map
from ..models.tokenizer_check import pairing
from .config import StudyConfig
from .layer_search import pair_at_depth, source_layer_for


def spearman(a: list[float], b: list[float]) -> float | None:
    """Spearman's rank correlation (average ranks for ties); None for fewer than 3 pairs."""
    if len(a) < 3:
        return None

    def ranks(x):
        order = sorted(range(len(x)), key=lambda i: x[i])
        r = [0.0] * len(x)
        i = 0
        while i < len(order):
            j = i
            while j + 1 < len(order) and x[order[j + 1]] == x[order[i]]:
                j += 1
            for k in range(i, j + 1):
                r[order[k]] = (i + j) / 2
            i = j + 1
        return torch.tensor(r, dtype=torch.float64)

    ra, rb = ranks(a), ranks(b)
    ra, rb = ra - ra.mean(), rb - rb.mean()
    den = float(ra.norm() * rb.norm())
    return float(ra @ rb) / den if den > 0 else None


LEGACY = {"max_pairs": lambda before, now: before.get("pairs"),
          "first_depth": lambda before, now: now.get("first_depth") if before.get("source_layer") is not None
          and before.get("target_layer") is not None else 0.0,
          "test_fill": lambda before, now: False,
          "grow_native": lambda before, now: False,
          "fallback": lambda before, now: "best"}
"""Options added after a study could have been written, with the value that study in effect ran with: before
--max-pairs the pairs never grew (max_pairs = pairs); before --first-depth a study without layers started at the
middle-block rule (first_depth 0), and one with both layers given is not affected by it; before --test-fill the
test items came from the test set alone; before --grow-native only the small model's vector decided the pairs;
before --fallback a study without a steering layer took the largest z."""

KEEP_FIT = ("method", "ridge", "ridge_grid", "max_norm_ratio", "adamw")
"""The fit settings that decide a text map's values (the rest only what is reported about it)."""

KEEP_HARVEST = ("corpus", "mix", "mix_share", "tokens", "context", "heldout_percent", "shuffle", "max_doc_tokens",
                "seed", "keep_first_token", "doc_split", "doc_split_percent", "align")
"""The harvest settings that decide a text map's rows (batch size and early stop do not)."""


def _value(v) -> str:
    return ",".join(map(str, v)) if isinstance(v, list) else str(v)


def _flag(k: str, v) -> str:
    """``--k v`` as it can be typed back (lists comma-joined, ``--k=v`` for a value starting with '-', a switch as
    ``--k`` / ``--no-k``)."""
    if isinstance(v, bool):
        return f"--{'' if v else 'no-'}{k.replace('_', '-')}"
    return f"--{k.replace('_', '-')}" + ("=" if _value(v).startswith("-") else " ") + _value(v)


def model_id(lm) -> str:
    """A local model's content fingerprint (the same file under another path is the same model), else its name."""
    return lm.fingerprint or lm.name


def first_pair(cfg: StudyConfig, src, tgt) -> tuple[int, int]:
    """Where the layer search starts: both layers as given; a target alone with the source block at its relative
    depth; otherwise the pair at ``--first-depth`` (0: the middle-block rule of the other commands)."""
    p = cfg.pair
    if p.target_layer is not None and p.source_layer is None:
        lt = tgt.layer_index(p.target_layer)
        return source_layer_for(lt, src.n_layers, tgt.n_layers), lt
    if p.source_layer is None and cfg.first_depth > 0:
        return pair_at_depth(cfg.first_depth, src.n_layers, tgt.n_layers)
    ls, lt = p.layers(src, tgt)
    return src.layer_index(ls), tgt.layer_index(lt)


def pool_record(src, tgt, dtype, contrast_pairs: int, chat: bool, align: str) -> dict[str, str]:
    """What a pool-differences file records (safetensors metadata) and is reused only if it matches."""
    return {"source": model_id(src), "target": model_id(tgt), "dtype": str(dtype),
            "contrast_pairs": str(contrast_pairs), "chat": str(chat), "align": str(align)}


SET_KEY = "set:"
"""A pool file's metadata key prefix for a set's data fingerprint (:func:`lrt.maps.contrast.set_fingerprint`)."""


def _set_of(key: str) -> str:
    return key.rsplit("|", 1)[0]


def pool_metadata(f: Path) -> tuple[dict[str, str], dict[str, str]] | None:
    """What a pool-differences file records: its settings (:func:`pool_record`) and each set's data fingerprint
    (set name → fingerprint); None: no file."""
    if not f.is_file():
        return None
    with safe_open(str(f), "pt") as r:
        record = r.metadata() or {}
    return ({k: v for k, v in record.items() if not k.startswith(SET_KEY)},
            {k[len(SET_KEY):]: v for k, v in record.items() if k.startswith(SET_KEY)})


def read_pool(f: Path, made: dict[str, str], sets: dict[str, str] | None = None
              ) -> tuple[dict[str, torch.Tensor], dict | None]:
    """A pool-differences file's tensors if it was made as ``made`` says (else none), and the settings it records
    (None: no file). ``sets`` (name → data fingerprint): only the sets whose recorded fingerprint is the same come
    back — a set whose data changed since, or one in a file written before fingerprints were kept, is computed
    again; None: every set."""
    meta = pool_metadata(f)
    if meta is None:
        return {}, None
    settings, recorded = meta
    if settings != made:
        return {}, settings
    with safe_open(str(f), "pt") as r:
        return {k: r.get_tensor(k) for k in r.keys() if sets is None or
                recorded.get(_set_of(k)) == sets.get(_set_of(k), "")}, settings


def write_pool(f: Path, have: dict[str, torch.Tensor], made: dict[str, str], sets: dict[str, str]) -> None:
    """Save pool differences atomically, with the settings ``made`` and each set's data fingerprint."""
    f.parent.mkdir(parents=True, exist_ok=True)
    meta = {**made, **{SET_KEY + n: sets[n] for n in {_set_of(k) for k in have}}}
    with atomic_path(f) as tmp:
        save_file(have, str(tmp), metadata=meta)


def is_text_map_for(m: AffineMap, src, tgt, harvest: HarvestConfig, fit: FitConfig, dtype) -> bool:
    """Whether a cached text map was fitted on these models (by content), the same text (the harvest settings that
    decide its rows, defaults filled for fields added later), the same fit settings and dtype (``meta["fit"]``,
    ``meta["dtype"]``: :func:`stamp_text_map`)."""
    fp = m.meta.get("model_fingerprints") or {}
    have = {**asdict(HarvestConfig()), **(m.meta.get("harvest") or {})}
    want, fitted = asdict(harvest), m.meta.get("fit") or {}
    return ((fp.get("source") or m.source, fp.get("target") or m.target) == (model_id(src), model_id(tgt))
            and all(have[k] == want[k] for k in KEEP_HARVEST) and m.meta.get("dtype") == str(dtype)
            and all(k in fitted and fitted[k] == v for k, v in asdict(fit).items() if k in KEEP_FIT))


def stamp_text_map(m: AffineMap, fit: FitConfig, dtype) -> AffineMap:
    """Record on a fitted text map what :func:`is_text_map_for` compares besides what the fit records itself."""
    m.meta["fit"], m.meta["dtype"] = asdict(fit), str(dtype)
    return m


class StudyCache:
    """The models, settings and cached intermediate results of one study directory."""

    def __init__(self, cfg: StudyConfig, out: Path, resume: bool, log=print, check=None):
        """``check(cache)``: run once the models are loaded, before anything is written (the items' checks)."""
        self.cfg, self.out, self.log, self.timings = cfg, Path(out), log, {}
        self._text_maps: dict[tuple[int, int], AffineMap] = {}
        self.settings = flatten(cfg)
        cfg_file = self.out / "config.json"
        if self.out.exists() and any(self.out.iterdir()):
            if not resume:
                raise OutputDirError(f"{self.out} already holds files; give --resume to continue that study, or "
                                     "another --out", option="out")
            if cfg_file.is_file():
                before = json.loads(cfg_file.read_text(encoding="utf-8"))
                for k, was in LEGACY.items():   # a study written before an option existed ran as this value says
                    if k not in before:
                        before[k] = was(before, self.settings)
                keep = ("behaviours",)          # adding behaviours to a study is fine; anything else is another study
                diff = sorted(k for k in set(before) | set(self.settings) if k not in keep and
                              before.get(k) != self.settings.get(k))
                if diff:
                    now = lambda k: (_flag(k, self.settings.get(k)) if isinstance(self.settings.get(k), bool)  # noqa: E731
                                     else _value(self.settings.get(k)))
                    said = ", ".join(f"{_flag(k, before.get(k))} (now {now(k)})"
                                     for k in diff)
                    raise ConfigError(f"{self.out} holds a study with other options: {said}; resume it with those "
                                      "options, or use another --out", option="resume")
        self.pool_sets, self.families, _ = resolve_sets(cfg.contrast_sets)
        t = time.time()
        self.src, self.tgt = cfg.pair.load(cfg.load)
        self.one_tokenizer = pairing(self.src.tokenizer, self.tgt.tokenizer, cfg.harvest.align, self.src.name,
                                     self.tgt.name) == "tokens"
        self.first_pair = first_pair(cfg, self.src, self.tgt)
        self.timings["load"] = round(time.time() - t, 1)
        if check is not None:
            check(self)
        ensure_writable(self.out)
        atomic_write_text(cfg_file, to_json(self.settings))

    @functools.cached_property
    def set_fingerprints(self) -> dict[str, str]:
        """Each pool set's data fingerprint at ``--contrast-pairs`` (read once per study: ~2 s for the default
        pool)."""
        return {s: set_fingerprint(s, self.cfg.contrast_pairs) for s in self.pool_sets}

    def pool_data(self, sets) -> str:
        """One sha256 over the data fingerprints of ``sets`` (pool sets): what a map fitted on them was fitted
        from."""
        got = {s: self.set_fingerprints[s] for s in sorted(sets)}
        return hashlib.sha256(json.dumps(got).encode("utf-8")).hexdigest()

    def models(self) -> dict:
        return {"source": {"name": self.src.name, "layers": self.src.n_layers, "width": self.src.d_model},
                "target": {"name": self.tgt.name, "layers": self.tgt.n_layers, "width": self.tgt.d_model}}

    @property
    def pool_made(self) -> dict[str, str]:
        """What this study's pool files record (:func:`pool_record`)."""
        return pool_record(self.src, self.tgt, self.cfg.load.dtype, self.cfg.contrast_pairs, self.cfg.chat,
                           self.cfg.harvest.align)

    def is_cached(self, ls: int, lt: int) -> bool:
        """Whether ``OUT/cache`` holds the layer pair's text map (for these models, text and fit) and its contrast
        pool with every pool set as it is now: nothing left to compute there."""
        if self.cached_text_map(ls, lt) is None:
            return False
        meta = pool_metadata(self.out / "cache" / f"pool-{ls}-{lt}.safetensors")
        return (meta is not None and meta[0] == self.pool_made
                and all(meta[1].get(s) == fp for s, fp in self.set_fingerprints.items()))

    def cached_text_map(self, ls: int, lt: int) -> AffineMap | None:
        """The layer pair's text map in ``OUT/cache/text-LS-LT`` if it was fitted on these models, text and fit
        settings (:func:`is_text_map_for`), else None."""
        if (ls, lt) in self._text_maps:                  # checked (or fitted) once per study run
            return self._text_maps[ls, lt]
        d = self.out / "cache" / f"text-{ls}-{lt}"
        if not (d / "map.json").is_file():
            return None
        m = AffineMap.load(d)
        if not is_text_map_for(m, self.src, self.tgt, self.cfg.harvest, self.cfg.fit, self.cfg.load.dtype):
            return None
        self._text_maps[ls, lt] = m
        return m

    def text_map(self, ls: int, lt: int) -> AffineMap:
        """The text map of the layer pair (fitted once; ``OUT/cache/text-LS-LT``)."""
        d = self.out / "cache" / f"text-{ls}-{lt}"
        m = self.cached_text_map(ls, lt)
        if m is not None:
            return m
        if (d / "map.json").is_file():
            self.log(f"  {d.name} was fitted on other models, text or settings: fitting it again")
        self.log(f"  fitting the text map L{ls} → L{lt} on {self.cfg.harvest.tokens:,} tokens of "
                 f"{self.cfg.harvest.corpus}")
        t = time.time()
        m = fit_map(self.src, self.tgt, ls, lt, self.cfg.harvest, self.cfg.fit)
        stamp_text_map(m, self.cfg.fit, self.cfg.load.dtype).save(d)
        self._text_maps[ls, lt] = m
        self.timings[f"text_map_{ls}_{lt}"] = round(time.time() - t, 1)
        return m

    def pool(self, ls: int, lt: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
        """Every pool set's per-pair differences on both models at the layer pair (``OUT/cache/pool-LS-LT``),
        computed set by set and saved after each, so an interrupted study resumes mid-pool; a set is reused while
        its data fingerprint (``set_fingerprints``) holds."""
        from tqdm.auto import tqdm

        f = self.out / "cache" / f"pool-{ls}-{lt}.safetensors"
        made = self.pool_made
        fps = self.set_fingerprints
        have, record = read_pool(f, made, fps)
        if record is not None and record != made:          # another pair, pair count or template: not this pool
            self.log(f"  {f.name} was made with other settings ({record or 'none recorded'}): computing it again")
        todo = [s for s in self.pool_sets if f"{s}|x" not in have]
        if record == made and todo:
            self.log(f"  {f.name}: {len(todo)} set(s) new or changed since it was cached ({', '.join(todo[:4])}"
                     f"{', …' if len(todo) > 4 else ''}): computing them")
        t = time.time()
        bar = self.cfg.eval.progress and bool(todo)                # no empty bar where the cache has every set
        for s in tqdm(todo, desc=f"contrast pool L{ls}→L{lt}", unit="set", disable=not bar):
            dx, dy = set_differences(self.src, self.tgt, ls, lt, s, self.cfg.contrast_pairs, self.cfg.chat)
            have[f"{s}|x"], have[f"{s}|y"] = dx.float().contiguous(), dy.float().contiguous()
            write_pool(f, have, made, fps)
        if todo:
            self.timings[f"pool_{ls}_{lt}"] = round(time.time() - t, 1)
        return {s: (have[f"{s}|x"], have[f"{s}|y"]) for s in self.pool_sets}
