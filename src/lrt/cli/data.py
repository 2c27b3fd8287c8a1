"""``lrt data list | show NAME | export NAME DIR``: the data sets that ship with lrt, usable by name anywhere."""

from __future__ import annotations

from .common import Output, show, writes_output
from .options import command


def _names(spec: str) -> list[str]:
    from ..data.registry import catalogue, lookup

    cat = catalogue()
    if spec in cat:
        return [spec]
    parts = sorted(n for n in cat if n.startswith(spec + "/"))
    if parts:
        return parts
    if lookup(spec) is None:          # an unknown name raises there; a path is not a shipped set
        from ..errors import DatasetError

        raise DatasetError(f"{spec!r} is not a data set name; `lrt data list` shows every name")
    return [lookup(spec)]


def list_sets(args) -> int:
    from ..data.registry import catalogue

    rows = []
    for name, rec in sorted(catalogue().items()):
        lic = "NLTK data (mixed)" if rec["kind"] == "corpus" else rec["licence"].split(" (")[0]
        rows.append([name, rec["kind"], rec.get("format", ""), rec["records"] if rec["records"] is not None else "",
                     rec["family"], lic])
    show(rows, ["name", "kind", "format", "records", "family (left out together)", "licence"])
    print("\nUse a name wherever a data file is taken (--contrast caa:refusal, --test caa:refusal, --corpus lrt:text);"
          "\na behaviour name alone is its generate set for --contrast and its test set for --test."
          "\n`lrt data show NAME` prints the source, licence, sha256 and first records.")
    return 0


def show_set(cfg) -> int:
    import json

    from ..data.contrasts import load_contrasts, prompt_fingerprint
    from ..data.corpus import iter_documents
    from ..data.registry import catalogue

    for name in _names(cfg.name):
        rec = catalogue()[name]
        print(f"\n{name}")
        records = rec["records"]
        if rec["kind"] in ("contrast", "test"):     # a set that repeats its prompts: say how many are distinct
            distinct = len({prompt_fingerprint(c.prompt) for c in load_contrasts(name)})
            if records is not None and distinct < records:
                records = f"{records} ({distinct} distinct prompts; a study and an evaluation count each once)"
        form = rec.get("format", "") + (" (each option after its question)" if rec.get("question_kept") else "")
        for k, v in (("kind", rec["kind"]), ("format", form), ("records", records),
                     ("family", rec["family"]), ("source", rec["source"]), ("licence", rec["licence"]),
                     ("sha256", rec["sha256"] or "(shipped with the zoo)"), ("file", rec["file"])):
            print(f"  {k:8s} {v}")
        if rec["kind"] == "corpus":
            for i, d in zip(range(cfg.records), iter_documents(name)):
                print(f"  [{d.get('source')}] {d.get('doc_id')}: {d['text'][:160]!r}")
        elif rec["kind"] == "prompts":
            from ..data.contrasts import read_text
            from pathlib import Path

            for p in json.loads(read_text(Path(rec["file"])))[:cfg.records]:
                print(f"  {p}")
        else:
            for c in load_contrasts(name, cfg.records):
                print(f"  prompt: {_clip(c.prompt)}\n    positive {c.positive!r}  negative {c.negative!r}")
    return 0


def _clip(text: str, head: int = 100, tail: int = 160) -> str:
    """A long prompt as its start and its end (where the question and the options are), never cut mid-text
    without saying so."""
    if len(text) <= head + tail + 20:
        return repr(text)
    return f"{text[:head]!r} … [{len(text) - head - tail} characters] … {text[-tail:]!r}"


@writes_output
def export(cfg, output: Output) -> int:
    from pathlib import Path

    from ..data.contrasts import read_text
    from ..data.registry import catalogue
    from ..io.files import atomic_path, to_json

    names = _names(cfg.name)          # unknown names fail before anything is written
    out = output.open()
    rows = []
    for name in names:
        rec = catalogue()[name]
        src = Path(rec["file"])
        stem = name.replace(":", "-").replace("/", "-")
        suffix = "".join(s for s in src.suffixes if s != ".gz")
        dest = out / f"{stem}{suffix}"
        with atomic_path(dest) as tmp:
            Path(tmp).write_text(read_text(src), encoding="utf-8")
        with atomic_path(out / f"{stem}.source.json") as tmp:
            Path(tmp).write_text(to_json({k: rec[k] for k in ("source", "licence", "sha256", "family", "records")}),
                                 encoding="utf-8")
        rows.append([name, str(output.path / dest.name)])
    show(rows, ["data set", "written to"])
    return 0


def register(sub) -> None:
    d = sub.add_parser("data", help="the data sets shipped with lrt (use them by name)").add_subparsers(
        dest="data_command", metavar="DATA")
    command(d, "list", "list the shipped data sets: name, kind, records, family, licence", list_sets)
    p = d.add_parser("show", help="a data set's source, licence, sha256 and first records")
    p.add_argument("name", help="a data set name (lrt data list), e.g. caa:refusal/test; a behaviour: every part")
    p.add_argument("--records", type=int, default=3, help="records to print (default: %(default)s)")
    p.set_defaults(handler=show_set)
    p = d.add_parser("export", help="write a data set (or every part of a behaviour) to a directory as plain files")
    p.add_argument("name", help="a data set name (lrt data list); a behaviour (caa:refusal) exports every part")
    p.add_argument("out", help="output directory")
    p.add_argument("--overwrite", action="store_true",
                   help="if OUT already holds files, replace them (swapped in whole at the end) (default: off)")
    p.set_defaults(handler=export)
