"""Command-line flags generated from configuration dataclasses, and ``--config FILE``.

Each leaf field of a command's config tree becomes one flag (``source_layer`` → ``--source-layer``) whose help
is the field's docstring and whose default is the tree's own, shown in ``--help``. An option shared by several
groups (``seed``, ``chat``, ``progress``) is one flag that sets all of them. Values come, in this order of
precedence, from the command line, from ``--config FILE`` (TOML or JSON: any option; the ``config.json``
written next to every artifact re-runs that command exactly), and from the config's defaults.
"""

from __future__ import annotations

import argparse
import dataclasses
import types
import typing
from typing import Any

from ..errors import ConfigError
from ..io.config import build, field_docs, group_defaults, group_docs, group_type, option_names, read_config_file
from .common import check_corpora, print_error


class Parser(argparse.ArgumentParser):
    """argparse, but a bad command line (a missing, unknown or invalid flag, of any subcommand: subparsers are of
    this class too) is the one ``lrt: error: ...`` line every refusal is, and exit status 2."""

    def error(self, message: str):
        print_error(f"{message} (see {self.prog} --help)")
        self.exit(2)


def _fmt(v: Any) -> str:
    if isinstance(v, list):
        return ",".join(_fmt(x) for x in v) or "none"
    if dataclasses.is_dataclass(v):
        return getattr(v, "name", str(v))
    return str(v)


def float_list(text: str) -> list[float]:
    try:
        return [float(a) for a in text.split(",") if a.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a comma list of numbers, got {text!r}") from None


class ExtendList(argparse.Action):
    """A comma list of numbers that repeated flags extend (``--alphas -1,0 --alphas 1`` is -1,0,1): a repeated
    flag never silently drops the values given before it."""

    def __call__(self, parser, namespace, values, option_string=None):
        setattr(namespace, self.dest, (getattr(namespace, self.dest, None) or []) + list(values))


def _kind(hint) -> tuple[str, Any]:
    """(kind, type) of a field's annotation: bool, list, append or scalar."""
    args = [a for a in typing.get_args(hint) if a is not type(None)]
    origin = typing.get_origin(hint)
    if origin in (typing.Union, types.UnionType):
        if args == [bool]:
            return "bool", bool
        if len(args) == 1:
            return _kind(args[0])
        return "scalar", str           # int | str (a layer), list | str (sizes): parsed by the config itself
    if hint is bool:
        return "bool", bool
    if origin is list:
        return ("list", float_list) if args == [float] else ("append", str)
    return "scalar", hint if hint in (int, float, str) else str


def add_options(parser: argparse.ArgumentParser, cls: type, exclude: tuple[str, ...] = (),
                defaults: dict[str, Any] | None = None, seen: set[str] | None = None,
                docs: dict[str, str] | None = None) -> set[str]:
    """Add a flag for every leaf option of the config tree ``cls``, one argument group per config group.
    Returns the option names added."""
    seen = set() if seen is None else seen
    defaults = defaults or {}
    hints = typing.get_type_hints(cls)
    docs = {**field_docs(cls), **(docs or {})}
    title = (cls.__doc__ or cls.__name__).strip().splitlines()[0]
    group = parser.add_argument_group(title.rstrip("."))
    for f in dataclasses.fields(cls):
        sub = group_type(hints[f.name])
        if sub is not None:
            add_options(parser, sub, exclude, {**defaults, **group_defaults(f)}, seen, group_docs(f))
            continue
        if f.name in exclude or f.name in seen:
            continue
        seen.add(f.name)
        value = defaults.get(f.name, f.default)
        if value is dataclasses.MISSING and f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        kind, typ = _kind(hints[f.name])
        doc = docs.get(f.name, "")
        shown = "required" if value is dataclasses.MISSING else f"default: {_fmt(value)}"
        kw: dict[str, Any] = {"dest": f.name, "default": None, "help": f"{doc} ({shown})".replace("%", "%%")}
        if kind == "bool":
            kw["action"] = argparse.BooleanOptionalAction
        elif kind == "append":
            kw.update(action="append", metavar=f.name.upper())
        else:
            kw.update(type=typ, metavar=f.name.upper())
            if kind == "list":
                kw["action"] = ExtendList
            if "choices" in f.metadata:
                kw.update(choices=f.metadata["choices"], metavar=None)
        group.add_argument("--" + f.name.replace("_", "-"), **kw)
        if f.name == "progress":
            group.add_argument("-q", "--quiet", dest="progress", action="store_false", default=None,
                               help="Same as --no-progress (default: progress shown).")
    return seen


def resolve(cls: type, args: argparse.Namespace, parser: argparse.ArgumentParser) -> Any:
    """The config tree of a parsed command line: flags, then ``--config`` file, then defaults; validated."""
    names = option_names(cls)
    flat = read_config_file(args.config) if getattr(args, "config", None) else {}
    unknown = sorted(set(flat) - names)
    if unknown:
        raise ConfigError(f"config file {args.config} sets unknown option(s) {', '.join(unknown)}; this command "
                          f"takes {', '.join(sorted(names))}", option="config")
    for name in names:
        v = getattr(args, name, None)
        if v is not None:                    # None: the flag was not given (no flag can give None)
            flat[name] = v
    missing = [n for n in _required(cls) if n not in flat]
    if missing:
        parser.error("the following arguments are required: " + ", ".join("--" + n.replace("_", "-") for n in missing))
    return build(cls, flat)


def _required(cls: type, defaults: dict[str, Any] | None = None) -> list[str]:
    defaults = defaults or {}
    out = []
    hints = typing.get_type_hints(cls)
    for f in dataclasses.fields(cls):
        sub = group_type(hints[f.name])
        if sub is not None:
            out += _required(sub, {**defaults, **group_defaults(f)})
        elif f.default is dataclasses.MISSING and f.default_factory is dataclasses.MISSING and f.name not in defaults:
            out.append(f.name)
    return out


def command(sub, name: str, help: str, run, cls: type | None = None,
            exclude: tuple[str, ...] = ()) -> argparse.ArgumentParser:   # noqa: A002 - argparse's name
    """Add subcommand ``name`` whose options are the config tree ``cls`` and whose handler ``run(cfg)`` gets the
    resolved, validated config, its corpora checked (a command that writes a directory wraps ``run`` in
    :func:`~lrt.cli.common.writes_output` and derives ``cls`` from :class:`~lrt.cli.common.OutputRun`)."""
    p = sub.add_parser(name, help=help, description=help)
    if cls is not None:
        add_options(p, cls, exclude)
        p.add_argument("--config", default=None, metavar="FILE",
                       help="TOML or JSON file of options (any option above; flags override it), e.g. the "
                            "config.json written next to a result")

        def handler(args: argparse.Namespace) -> int:
            cfg = resolve(cls, args, p)
            check_corpora(cfg)               # a corpus's content, before any model loads
            return run(cfg)
        p.set_defaults(handler=handler)
    else:
        p.set_defaults(handler=run)
    return p
