"""``lrt report``: the HTML report of a results directory."""

from __future__ import annotations


def run(args) -> int:
    from ..report.html import write_report

    path = write_report(args.results, args.output)
    print(f"report written to {path}")
    return 0


def register(sub) -> None:
    p = sub.add_parser("report", help="write the HTML report of a results directory",
                       description="write the HTML report of a results directory")
    p.add_argument("results", help="directory holding results.json (or the file)")
    p.add_argument("-o", "--output", default=None,
                   help="HTML file, in an existing directory (default: RESULTS/report.html)")
    p.set_defaults(handler=run)
