"""One self-contained HTML page from a ``results.json`` of ``lrt demo`` or ``lrt evaluate``: verdict, curves,
slopes, agreement with the native vector, side effects, vectors, map quality, settings (tables in
:mod:`.sections`, plots in :mod:`.plots`)."""

from __future__ import annotations

import html
import os
from pathlib import Path

from ..errors import ArtifactError, OutputDirError
from ..io.files import atomic_write_text
from ..io.results import SAE_INIT_KIND, STUDY_KIND, SWEEP_KIND, load_results
from . import sections
from .sweep import render_sweep
from .plots import named, plot_curves, plot_slopes, random_names, shaded_range

STYLE = sections.STYLE


def check_results(results: dict) -> None:
    """The sections the page is built from have the shape it needs; else one :class:`ArtifactError`."""
    s = results.get("steering")
    if not isinstance(s, dict):
        raise ArtifactError("the results have no steering evaluation; re-run lrt demo or lrt evaluate")
    missing = [k for k in ("alphas", "n_items", "curves") if k not in s]
    if missing:
        raise ArtifactError(f"the results' steering section lacks {', '.join(missing)}; it was not written by lrt "
                            "demo or lrt evaluate of this version: re-run that command")
    bad = [n for n, c in s["curves"].items() if not isinstance(c, dict) or len(c.get("mean") or []) != len(s["alphas"])]
    if bad:
        raise ArtifactError(f"the results' curves of {', '.join(bad)} do not match the α grid; re-run the command")
    models = results.get("models")
    if not isinstance(models, dict) or not isinstance(models.get("target"), dict):
        raise ArtifactError("the results' models section has no target model; re-run lrt demo or lrt evaluate")
    for key in ("verdict", "vectors", "settings"):
        if not isinstance(results.get(key) or {}, dict):
            raise ArtifactError(f"the results' {key} section is not a mapping; re-run lrt demo or lrt evaluate")


def _where(m: dict) -> str:
    name = html.escape(sections.fmt(m.get("name")))
    return name + (f" layer {html.escape(sections.fmt(m['layer']))}" if m.get("layer") is not None else "")


def header(results: dict) -> str:
    s = results["steering"]
    models = results["models"]
    src, tgt = models.get("source"), models["target"]
    demo = results.get("command") == "demo"
    bits = [f"{_where(src)} → {_where(tgt)}" if src else f"vectors on {_where(tgt)}"]
    concept = (results.get("vectors") or {}).get("concept")
    if concept:
        bits.append(f"concept <b>{html.escape(str(concept))}</b>")
    bits.append(f"{html.escape(sections.fmt(s['n_items']))} test items")
    a = s["alphas"]
    if a:
        bits.append(f"α grid {sections.fmt(min(a))} … {sections.fmt(max(a))} ({len(a)} values)")
    bits.append(f"{len(random_names(s['curves']))} random vectors")
    note = ""
    if tgt.get("layer_override"):
        note = (f"<p>Vectors of layer {html.escape(sections.fmt(tgt.get('vectors_layer')))} applied at layer "
                f"{html.escape(sections.fmt(tgt.get('layer')))} (explicit override).</p>")
    title = "lrt transfer report" if demo else "lrt steering evaluation"
    command = html.escape(sections.fmt(results.get("command")))
    return f"<h1>{title}</h1><p>lrt {command}: {' · '.join(bits)}</p>{note}"


def plots_section(s: dict) -> str:
    rn = random_names(s["curves"])
    shade = shaded_range(s)
    parts = ["Mean propensity over the test items, with its 95% bootstrap CI, for "
             + ", ".join(n.replace("_", " ") for n in named(s["curves"])) + "."]
    if rn:
        parts.append(f"Grey band: the {len(rn)} random vectors of the same norm, min–max at each α (dashed: their "
                     "mean); below, their slopes as grey points, the band ± their largest |slope|.")
    if shade:
        parts.append(f"Shaded: the native curve's monotonic range, α from {sections.fmt(shade[0])} to "
                     f"{sections.fmt(shade[1])}, over which the slopes are fitted.")
    else:
        parts.append(f"Slopes are fitted over {sections.range_text(s)}.")
    return ("<h2>Propensity curves</h2>" + plot_curves(s) + plot_slopes(s)
            + f"<p class='caption'>{html.escape(' '.join(parts))}</p>")


def render(results: dict) -> str:
    if results.get("kind") == SWEEP_KIND:
        return render_sweep(results, STYLE)
    if results.get("kind") == STUDY_KIND:
        from .study import render_study

        return render_study(results, STYLE)
    if results.get("kind") == SAE_INIT_KIND:
        from .sae import init_page

        return init_page(results, STYLE)
    check_results(results)
    s = results["steering"]
    parts = [header(results)]
    parts.append(sections.verdict_section(s, results.get("verdict") or {}))
    parts.append(plots_section(s))
    if s.get("comparison"):
        parts.append(sections.agreement_section(s) + sections.per_alpha_section(s))
    parts.append(sections.side_effects_section(s))
    parts.append(sections.vectors_section(results))
    parts.append(sections.map_section(results))
    parts.append(sections.settings_section(results))
    return (f"<!doctype html><html><head><meta charset='utf-8'><title>lrt report</title><style>{STYLE}</style>"
            f"</head><body>{''.join(parts)}</body></html>")


def report_path(results_path: str | Path, out: str | Path | None) -> Path:
    """Where the report goes (default: ``report.html`` next to the results), checked before anything is written:
    not a directory, in an existing, writable directory — else one :class:`OutputDirError`."""
    p = Path(results_path)
    target = Path(out) if out else (p if p.is_dir() else p.parent) / "report.html"
    if target.is_dir():
        raise OutputDirError(f"{str(target)!r} is a directory; give the report a file name, e.g. "
                             f"{str(target / 'report.html')!r}", option="output")
    parent = target.parent
    if not parent.exists():
        raise OutputDirError(f"the directory of {str(target)!r} ({str(parent)!r}) does not exist; create it first "
                             "or choose another file", option="output")
    if not parent.is_dir():
        raise OutputDirError(f"{str(parent)!r} is not a directory; choose another file for the report", option="output")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise OutputDirError(f"the directory {str(parent)!r} is read-only; choose another file for the report",
                             option="output")
    return target


def write_report(results_dir: str | Path, out: str | Path | None = None) -> Path:
    """Render ``results.json`` (or the directory holding it) to ``out`` (default: next to it, ``report.html``).

    Every problem — unreadable results, a bad output path — is one :class:`ArtifactError` or
    :class:`OutputDirError`, raised before anything is written."""
    results = load_results(results_dir)
    path = report_path(results_dir, out)
    page = render(results)
    try:
        atomic_write_text(path, page)
    except OSError as e:
        raise OutputDirError(f"cannot write the report to {str(path)!r} ({e.strerror or e}); choose another file",
                             option="output") from None
    return path
