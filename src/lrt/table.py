"""Plain-text summary tables printed at the end of each command."""

from __future__ import annotations


def fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return "nan"
        return f"{v:.4g}" if abs(v) < 1e5 else f"{v:.3e}"
    return "—" if v is None else str(v)


def render(rows: list[list], headers: list[str] | None = None, title: str | None = None) -> str:
    cells = ([headers] if headers else []) + [[fmt(c) for c in r] for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(cells[0]))]
    line = "  ".join("-" * w for w in widths)
    out = [title] if title else []
    for i, r in enumerate(cells):
        out.append("  ".join(c.ljust(w) if j == 0 else c.rjust(w) for j, (c, w) in enumerate(zip(r, widths))))
        if i == 0 and headers:
            out.append(line)
    return "\n".join(out)


def show(rows: list[list], headers: list[str] | None = None, title: str | None = None) -> None:
    print(render(rows, headers, title))
