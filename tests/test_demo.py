"""The main job on the shipped family: `lrt demo`, and the steer → transfer → evaluate → report chain."""

import json

import pytest

from lrt.cli import main
from lrt.steering.vectors import SteeringVector


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    out = tmp_path_factory.mktemp("demo") / "lrt-demo"
    assert main(["demo", "--out", str(out), "--no-progress"]) == 0
    return out, json.loads((out / "results.json").read_text())


def test_demo_writes_everything(demo):
    out, res = demo
    html = (out / "report.html").read_text()
    assert html.count("<img src=\"data:image/png;base64,") >= 2 and "Verdict" in html
    for name in ("source", "native", "transferred-direction", "transferred-point"):
        assert SteeringVector.load(out / "vectors" / name).norm > 0
    assert res["settings"]["source"] == "zoo-xs" and res["settings"]["target"] == "zoo-m"
    assert res["timings"]["total"] < 600


def test_demo_map_quality(demo):
    _, res = demo
    held = res["map"]["metrics"]["heldout"]
    assert held["r2"] > res["map"]["metrics"]["shuffled_control_heldout"]["r2"] + 0.3


def test_transferred_sentiment_vector_steers_like_native(demo):
    """zoo-xs L0 → zoo-m L0, 16 random vectors. Measured: slopes native 1.99 (p 0.007 against the random slopes,
    CI 1.84–2.16), transferred 1.29 (z 2.0, p 0.06, above 15 of 16 random |slopes|; ratio 0.65, CI 0.62–0.68),
    point −0.46; random −1.13 … 1.32 (mean |slope| 0.52); mean r of odd shifts transferred 0.99 vs random −0.07;
    cosine to native 0.89. The margins below sit under those values and above what random vectors reach; "beats
    every random vector" is not asserted: with 16 draws one random direction reaches 1.32 (with the first 12, 0.17).
    """
    _, res = demo
    s, v = res["steering"], res["verdict"]
    comp = s["comparison"]
    rnd = s["random"]["slopes"]
    assert len(rnd) >= 16
    slope = {n: s["curves"][n]["slope_monotonic"] for n in ("native", "transferred_direction", "transferred_point")}
    print(f"\nslopes {slope}, random {sorted(round(r, 3) for r in rnd)}; significance "
          f"{ {n: (round(g['z'], 2), round(g['p_value'], 4)) for n, g in v['vectors'].items()} }")
    assert s["monotonic_range"] == [s["alphas"][0], s["alphas"][-1]]
    nat, tr = v["vectors"]["native"], v["vectors"]["transferred_direction"]
    assert nat["status"] == "steers forward" and nat["p_value"] < 0.02 and v["native"]["steers"]
    assert slope["native"] > 1.4 * max(abs(r) for r in rnd)            # the family's own vector: a clear margin
    assert tr["slope"] > 0 and tr["z"] > 1.5 and tr["percentile"] >= 85
    assert slope["transferred_direction"] > 2 * s["random"]["mean_abs_slope"]
    t = v["transfer"]["transferred_direction"]
    assert t["ratio_ci"][0] > 0.5 and t["ratio_ci"][1] < 1.0 and t["status"] != "opposite sign to native"
    trc, rm = comp["transferred_direction"], comp["random_mean"]
    assert trc["mean_r_shift"] > 0.9 and trc["mean_r_shift"] > rm["mean_r_shift"] + 0.6
    assert trc["mean_r_odd"] > 0.9 and abs(rm["mean_r_odd"]) < 0.3
    assert res["vectors"]["cosine_to_native"]["transferred_direction"] > 0.7
    assert v["transfer"]["transferred_point"]["status"] == "opposite sign to native"
    assert v["better_transfer_mode"] == "direction"       # A·v beats A·v + p


def test_cli_chain(demo, tmp_path, capsys):
    out, _ = demo
    assert main(["steer", "--model", "zoo-xs", "--layer", "0", "--max-pairs", "40", "--out", str(tmp_path / "v"),
                 "--gguf", str(tmp_path / "v.gguf")]) == 0
    assert (tmp_path / "v.gguf").stat().st_size > 0
    assert main(["transfer", "--vector", str(tmp_path / "v"), "--map", str(out / "map"),
                 "--out", str(tmp_path / "t")]) == 0
    t = SteeringVector.load(tmp_path / "t")
    assert t.model == "zoo-m" and t.vector.shape == (256,)
    assert main(["evaluate", "--model", "zoo-m", "--native", str(out / "vectors" / "native"), "--vector",
                 str(tmp_path / "t"), "--alphas", "-0.2,0,0.2", "--n-random", "2", "--lowercase",
                 "--out", str(tmp_path / "e")]) == 0
    assert main(["report", str(tmp_path / "e")]) == 0
    assert (tmp_path / "e" / "report.html").exists()
    assert main(["generate", "--model", "zoo-m", "--vector", str(tmp_path / "t"), "--prompt", "the movie was",
                 "--max-new-tokens", "8"]) == 0
    assert "[α=0.2]" in capsys.readouterr().out
    # bad input: a vector at another layer than the map's source, a vector of another width, an empty α grid
    assert main(["steer", "--model", "zoo-xs", "--layer", "1", "--max-pairs", "4", "--out", str(tmp_path / "v0")]) == 0
    assert main(["transfer", "--vector", str(tmp_path / "v0"), "--map", str(out / "map"), "--out", str(tmp_path / "z")]) == 2
    assert "the map starts at layer 0" in capsys.readouterr().err
    assert main(["evaluate", "--model", "zoo-m", "--native", str(tmp_path / "v"), "--out", str(tmp_path / "x")]) == 2
    assert main(["evaluate", "--model", "zoo-m", "--native", str(out / "vectors" / "native"), "--alphas", ",",
                 "--out", str(tmp_path / "y")]) == 2
    assert "α grid is empty" in capsys.readouterr().err


def test_readme_python_example_runs(tmp_path, monkeypatch):
    """The README's Python API block, executed as written (in a temporary working directory)."""
    import re
    from pathlib import Path

    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    code = re.search(r"## Python API\n\n```python\n(.*?)```", readme, re.S).group(1)
    monkeypatch.chdir(tmp_path)
    scope = {}
    exec(compile(code, "README.md", "exec"), scope)
    assert (tmp_path / "maps" / "xs-m" / "map.json").exists()
    assert scope["res"]["curves"]["native"]["slope"] > 0
