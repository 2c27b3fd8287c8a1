"""Configuration dataclasses: the docstring under each field, the flat view, and config files.

Every configurable step of ``lrt`` is a dataclass whose fields each carry a docstring (a string literal on
the line after the field, as sparsify's configs do); :func:`field_docs` reads them from the source, so the
CLI's help text and the documentation come from one place. A command's configuration is a tree of such
dataclasses; its *flat* view (:func:`flatten`) maps each option name to its value — the same names as the
command-line flags (``--source-layer`` ↔ ``source_layer``), as a ``--config`` file, and as the
``config.json`` written next to every artifact.
"""

from __future__ import annotations

import ast
import dataclasses
import functools
import inspect
import json
import textwrap
import typing
from pathlib import Path
from typing import Any

from ..errors import ConfigError


@functools.cache
def field_docs(cls: type) -> dict[str, str]:
    """``{field: docstring}`` of a dataclass (docstrings of its bases included)."""
    docs: dict[str, str] = {}
    for klass in reversed(cls.__mro__):
        if not dataclasses.is_dataclass(klass):
            continue
        try:
            tree = ast.parse(textwrap.dedent(inspect.getsource(klass)))
        except (OSError, TypeError):       # no source (frozen app): no help text, nothing else breaks
            continue
        body = tree.body[0].body
        for stmt, nxt in zip(body, body[1:]):
            if (isinstance(stmt, ast.AnnAssign) and isinstance(stmt.target, ast.Name) and isinstance(nxt, ast.Expr)
                    and isinstance(nxt.value, ast.Constant) and isinstance(nxt.value.value, str)):
                docs[stmt.target.id] = " ".join(nxt.value.value.split())
    return docs


def is_group(value: Any) -> bool:
    return dataclasses.is_dataclass(value) and not isinstance(value, type)


def group_type(hint: Any) -> type | None:
    """The config class of a field annotated with one (a nested group), else None."""
    return hint if isinstance(hint, type) and dataclasses.is_dataclass(hint) else None


def flatten(cfg: Any) -> dict[str, Any]:
    """The flat view ``{option: value}`` of a config tree; an option shared by several groups appears once."""
    out: dict[str, Any] = {}
    for f in dataclasses.fields(cfg):
        value = getattr(cfg, f.name)
        if is_group(value):
            for k, v in flatten(value).items():
                out.setdefault(k, v)
        else:
            out.setdefault(f.name, value)
    return out


def group_defaults(f: dataclasses.Field) -> dict[str, Any]:
    """The defaults a parent config sets for a nested group (``field(metadata={"defaults": {...}})``)."""
    return dict(f.metadata.get("defaults", {}))


def group_docs(f: dataclasses.Field) -> dict[str, str]:
    """The help a parent config gives a nested group's options where their own docstring does not hold there
    (``field(metadata={"docs": {...}})``, e.g. a default the parent resolves its own way)."""
    return dict(f.metadata.get("docs", {}))


def option_names(cls: type) -> set[str]:
    """Every leaf option of the config tree ``cls``."""
    names: set[str] = set()
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        sub = group_type(hints[f.name])
        names |= option_names(sub) if sub is not None else {f.name}
    return names


def build(cls: type, flat: dict[str, Any], defaults: dict[str, Any] | None = None) -> Any:
    """Instantiate the config tree ``cls`` from a flat dict ``{option: value}``; options it does not set take the
    defaults the parent groups declare for them, then the fields' own defaults.

    Each group's ``__post_init__`` validates it, so a bad value raises :class:`ConfigError` here, before
    anything is loaded or written.
    """
    defaults = defaults or {}
    kwargs = {}
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        if not f.init:
            continue
        sub = group_type(hints[f.name])
        if sub is not None:
            kwargs[f.name] = build(sub, flat, {**defaults, **group_defaults(f)})
        elif f.name in flat:
            kwargs[f.name] = flat[f.name]
        elif f.name in defaults:
            kwargs[f.name] = defaults[f.name]
    return cls(**kwargs)


def read_config_file(path: str | Path) -> dict[str, Any]:
    """Options from a TOML or JSON file: flat (``tokens = 60000``) or in tables (``[harvest]`` ``tokens = 60000``);
    dashes and underscores are the same (``source-layer`` = ``source_layer``)."""
    p = Path(path)
    if not p.is_file():
        raise ConfigError(f"config file {str(p)!r} does not exist")
    text = p.read_text(encoding="utf-8")
    try:
        if p.suffix == ".json":
            data = json.loads(text)
        else:
            import tomllib

            data = tomllib.loads(text)
    except (json.JSONDecodeError, ValueError) as e:
        raise ConfigError(f"config file {p} is not valid {'JSON' if p.suffix == '.json' else 'TOML'}: {e}") from None
    if not isinstance(data, dict):
        raise ConfigError(f"config file {p} must hold a table of options")
    out: dict[str, Any] = {}

    def walk(d: dict) -> None:
        for k, v in d.items():
            if isinstance(v, dict):
                walk(v)
            else:
                out[k.replace("-", "_")] = v
    walk(data)
    return out
