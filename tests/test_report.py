"""The HTML report of results envelopes shaped like `lrt demo`'s and `lrt evaluate`'s (built directly, no model):
every vector in the tables, random vectors as a distribution over all of them, no None/null/nan cell, the
monotonic-range shading only when it says something, bad output paths as one clear error."""

import json
import math
import os
import shutil
import subprocess
from html.parser import HTMLParser
from pathlib import Path

import pytest

from lrt.cli import main
from lrt.evaluate.verdict import verdict
from lrt.io.results import make_results, write_results
from lrt.report.html import render
from lrt.report.plots import SHADE_GID, curves_figure, shaded_range
from lrt.report.sections import fmt

ALPHAS = [-0.2, -0.1, 0.0, 0.1, 0.2]
RANDOM_SLOPES = [-0.4, 0.3, 0.1, -0.6, 0.1]          # mean −0.1, max |slope| 0.6, mean |slope| 0.3
RANDOM_ODD = [-0.5, 0.1, 0.2, -0.3, 0.15]            # mean −0.07 (random_0 alone: −0.5)
BAD = {"None", "null", "nan", "NaN", "none"}


def curve(slope: float) -> dict:
    mean = [1.0 + slope * a for a in ALPHAS]
    return {"mean": mean, "ci_low": [m - 0.05 for m in mean], "ci_high": [m + 0.05 for m in mean],
            "m_ld_mean": mean, "slope": slope, "slope_monotonic": slope}


def comparison(r_odd: float, r_shift: float) -> dict:
    per_alpha = []
    for a in ALPHAS:
        row = {"alpha": a, "r": 0.9, "r_m_ld": 0.95}
        if a != 0:
            row["r_shift"] = r_shift
        if a > 0:
            row["r_odd"] = r_odd
        per_alpha.append(row)
    return {"per_alpha": per_alpha, "mean_r": 0.9, "mean_r_m_ld": 0.95, "mean_r_shift": r_shift, "mean_r_odd": r_odd,
            "mse": 0.1}


def steering(named: dict[str, tuple[float, float]], mono=(ALPHAS[0], ALPHAS[-1])) -> dict:
    """``named``: name → (slope, r_odd with native); "native" first; five random vectors."""
    curves = {n: curve(sl) for n, (sl, _) in named.items()}
    comp = {n: comparison(odd, odd) for n, (_, odd) in named.items() if n != "native"}
    for k, (sl, odd) in enumerate(zip(RANDOM_SLOPES, RANDOM_ODD)):
        curves[f"random_{k}"] = curve(sl)
        comp[f"random_{k}"] = comparison(odd, odd)
    rnd = [n for n in comp if n.startswith("random_")]
    comp["random_mean"] = {key: sum(comp[n][key] for n in rnd) / len(rnd)
                           for key in ("mean_r", "mean_r_m_ld", "mean_r_shift", "mean_r_odd", "mse")}
    return {"alphas": ALPHAS, "n_items": 40, "median_norm": 3.0, "curves": curves, "monotonic_range": list(mono),
            "comparison": comp, "config": {}, "seconds": {"grid": 1.0},
            "random": {"slopes": RANDOM_SLOPES, "max_slope": 0.3, "max_abs_slope": 0.6, "mean_abs_slope": 0.3},
            "side_effects": {"alpha": 0.2, "kl": {n: 0.1 for n in curves}}}


def demo_results() -> dict:
    s = steering({"native": (2.0, 1.0), "transferred_direction": (1.2, 0.99), "transferred_point": (-0.3, 0.5)})
    m = {"method": "closed-form", "ridge": 1e-6,
         "tokens": {"train_rows": 900, "heldout_rows": 100, "excluded_massive": 0},
         "metrics": {"heldout": {"rows": 100, "r2": 0.56, "r2_below_q99": 0.57, "mse": 5.0, "cosine_mean": 0.8},
                     "shuffled_control_heldout": {"r2": 0.01}},
         "norms": {"source": {"median": 8.0}, "target": {"median": 60.0}}, "seconds": {"harvest": 3.0, "fit": 0.1}}
    return make_results("demo", {"source": "zoo-xs", "doc_split": None, "alphas": ALPHAS, "ridge": 1e-6},
                        {"source": {"name": "zoo-xs", "layers": 2, "width": 128, "layer": 0},
                         "target": {"name": "zoo-m", "layers": 4, "width": 256, "layer": 0}},
                        {"concept": "sentiment", "source_norm": 0.15, "native_norm": 1.0, "n_pairs": 200,
                         "cosine_to_native": {"transferred_direction": 0.85, "transferred_point": 0.16}},
                        s, verdict(s), map=m, timings={"total": 20.0})


def evaluate_results() -> dict:
    s = steering({"native": (2.0, 1.0), "transferred_direction": (1.5, 0.9), "my_vec": (0.2, float("nan"))},
                 mono=(-0.1, 0.2))
    s["side_effects"]["kl"]["my_vec"] = float("nan")
    vec = {"concept": None, "cosine_to_native": {"transferred_direction": 0.6, "my_vec": float("nan")},
           "norms": {"native": 1.0, "transferred_direction": 1.5, "my_vec": 2.0},
           "made_for": {n: {"model": "zoo-m", "layer": 0} for n in ("native", "transferred_direction", "my_vec")}}
    return make_results("evaluate", {"model": "zoo-m", "layer": None, "vector": ["a", "b"], "alphas": ALPHAS},
                        {"source": None, "target": {"name": "zoo-m", "layers": 4, "width": 256, "layer": None}},
                        vec, s, verdict(s))


class Tables(HTMLParser):
    """Every table (by class) as rows of cell texts, and the page's text."""

    def __init__(self):
        super().__init__()
        self.tables, self.text, self._row, self._cell = [], [], None, None

    def handle_starttag(self, tag, attrs):
        if tag == "table":
            self.tables.append((dict(attrs).get("class", ""), []))
        elif tag == "tr":
            self._row = []
            self.tables[-1][1].append(self._row)
        elif tag in ("td", "th"):
            self._cell = []

    def handle_endtag(self, tag):
        if tag in ("td", "th"):
            self._row.append("".join(self._cell).strip())
            self._cell = None

    def handle_data(self, data):
        self.text.append(data)
        if self._cell is not None:
            self._cell.append(data)

    def table(self, cls: str) -> list[list[str]]:
        found = [rows for c, rows in self.tables if c.split()[0:1] == [cls] or cls in c.split()]
        assert found, f"no table {cls!r} in {[c for c, _ in self.tables]}"
        return found[0]


def parse(page: str) -> Tables:
    p = Tables()
    p.feed(page)
    return p


def check_cells(p: Tables) -> None:
    cells = [c for _, rows in p.tables for r in rows for c in r]
    assert cells and not [c for c in cells if c in BAD or "nan" in c.split()]
    assert "None" not in "".join(p.text) and "null" not in "".join(p.text)


def row(rows: list[list[str]], first: str) -> list[str]:
    return next(r for r in rows if r[0] == first)


def test_demo_report_tables():
    res = demo_results()
    p = parse(render(res))
    check_cells(p)
    names = ["native", "transferred_direction", "transferred_point"]
    v = p.table("verdict")
    assert [r[0] for r in v[1:4]] == names
    assert v[0][:3] == ["vector", "status", "slope"] and row(v, "transferred_direction")[2] == fmt(1.2)
    mean_row = row(v, "random ×5: mean ± sd")
    assert mean_row[2].startswith(fmt(-0.1) + " ± ")                          # the mean slope of all 5
    assert mean_row[10].startswith(fmt(-0.07) + " ± ")                        # not random_0's −0.5
    assert row(v, "random ×5: min … max")[2] == f"{fmt(-0.6)} … {fmt(0.3)}"
    extra = p.table("verdict-extra")
    assert row(extra, "largest random |slope|")[1] == fmt(0.6) and row(extra, "mean random |slope|")[1] == fmt(0.3)
    assert row(extra, "better transfer mode (mean r of odd shifts)")[1] == "direction"
    ag = p.table("agreement")
    assert [r[0] for r in ag[1:3]] == names[1:]
    assert row(ag, "random ×5: mean ± sd")[3].startswith(fmt(-0.07) + " ± ")
    odd = p.table("r_odd")
    assert odd[0][1:3] == names[1:] and len(odd) == 1 + 2                     # α = 0.1, 0.2
    assert all(r[3].startswith(fmt(-0.07) + " ± ") for r in odd[1:])
    assert [r[0] for r in p.table("r_shift")[1:]] == [fmt(a) for a in ALPHAS if a != 0]
    cos = p.table("vectors")
    assert row(cos, "transferred_direction")[1] == fmt(0.85) and row(cos, "transferred_point")[1] == fmt(0.16)
    assert row(p.table("kl"), "random ×5: mean ± sd")[1].startswith(fmt(0.1))
    settings = p.table("settings")
    assert row(settings, "doc_split")[1] == "—" and row(settings, "alphas")[1] == "-0.2, -0.1, 0, 0.1, 0.2"
    assert row(settings, "ridge")[1] == "1e-06"
    assert row(p.table("map"), "method")[1] == "closed-form"
    text = "".join(p.text)
    assert "zoo-xs layer 0 → zoo-m layer 0" in text and "the whole grid" in text


def test_evaluate_report_via_cli(tmp_path, capsys):
    write_results(tmp_path, evaluate_results())
    assert main(["report", str(tmp_path)]) == 0
    p = parse((tmp_path / "report.html").read_text())
    check_cells(p)
    text = "".join(p.text)
    assert "vectors on zoo-m ·" in text and "layer -" not in text and "layer —" not in text
    v = p.table("verdict")
    assert [r[0] for r in v[1:4]] == ["native", "transferred_direction", "my_vec"]
    assert row(v, "my_vec")[10] == "—"                                        # its r of odd shifts is NaN
    assert row(v, "random ×5: mean ± sd")[2].startswith(fmt(-0.1) + " ± ")
    assert "better transfer mode" not in text                               # only one transfer mode here
    cos = p.table("vectors")
    assert cos[0] == ["vector", "cosine to native", "norm", "made for"]
    assert row(cos, "transferred_direction")[1] == fmt(0.6) and row(cos, "my_vec")[1] == "—"
    assert row(cos, "my_vec")[3] == "zoo-m layer 0"
    assert p.table("r_shift")[0][1:3] == ["transferred_direction", "my_vec"]
    assert row(p.table("kl"), "my_vec")[1] == "—"
    assert "Map quality" not in text and "−0.1 … 0.2" not in text and "from -0.1 to 0.2" in text
    settings = p.table("settings")
    assert row(settings, "layer")[1] == "—" and row(settings, "vector")[1] == "a, b"


def _shades(fig) -> int:
    return sum(1 for ax in fig.axes for patch in ax.patches if patch.get_gid() == SHADE_GID)


def test_monotonic_shading_only_when_narrower_than_the_grid():
    whole = demo_results()["steering"]
    assert shaded_range(whole) is None and _shades(curves_figure(whole)) == 0
    narrow = evaluate_results()["steering"]
    assert shaded_range(narrow) == (-0.1, 0.2) and _shades(curves_figure(narrow)) == 1
    legend = [t.get_text() for t in curves_figure(whole).axes[0].get_legend().get_texts()]
    assert sum("random" in t for t in legend) == 1 and len(legend) == 4      # 3 vectors + one random band
    del narrow["monotonic_range"]
    assert shaded_range(narrow) is None and _shades(curves_figure(narrow)) == 0


def test_bad_output_paths_and_results(tmp_path, capsys):
    res_dir = tmp_path / "res"
    write_results(res_dir.mkdir() or res_dir, demo_results())
    existing = tmp_path / "existing"
    existing.mkdir()
    assert main(["report", str(res_dir), "-o", str(existing)]) == 2
    assert "lrt: error:" in capsys.readouterr().err and os.listdir(existing) == []
    assert main(["report", str(res_dir), "-o", str(tmp_path / "missing" / "r.html")]) == 2
    assert "does not exist" in capsys.readouterr().err and not (tmp_path / "missing").exists()
    assert sorted(os.listdir(res_dir)) == ["results.json"]
    for broken in ({k: v for k, v in demo_results().items() if k != "steering"},
                   {**demo_results(), "steering": {"alphas": ALPHAS}}):
        bad = tmp_path / "bad"
        shutil.rmtree(bad, ignore_errors=True)
        bad.mkdir()
        (bad / "results.json").write_text(json.dumps(broken))
        assert main(["report", str(bad)]) == 2
        assert "lrt: error:" in capsys.readouterr().err and sorted(os.listdir(bad)) == ["results.json"]
    assert main(["report", str(res_dir), "-o", str(tmp_path / "r.html")]) == 0
    assert (tmp_path / "r.html").stat().st_size > 0 and not list(tmp_path.glob(".*tmp"))


@pytest.mark.skipif(not Path("/usr/bin/chromium").exists(), reason="no /usr/bin/chromium")
def test_report_screenshot(tmp_path):
    page = tmp_path / "report.html"
    page.write_text(render(evaluate_results()))
    shot = tmp_path / "shot.png"
    subprocess.run(["/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", f"--screenshot={shot}",
                    "--window-size=1000,3000", page.as_uri()], check=True, timeout=120, capture_output=True)
    assert shot.stat().st_size > 0


def test_fmt_never_prints_missing_values():
    assert {fmt(x) for x in (None, float("nan"), math.inf, "None", "null", [], {})} == {"—"}
    assert fmt([1, None, 0.5]) == "1, —, 0.5" and fmt(True) == "yes"
