"""Every HTML page lrt writes, rendered headless in a real browser (issue "a report checked in a real browser").

Pages: `lrt demo`, `lrt evaluate` + `lrt report`, `lrt sweep-layers`, `lrt sae compare-init`, `lrt sae features`
and `lrt study`, each from a real run with tiny budgets on the shipped zoo models. (No command writes a probes page.)
Each page is opened in Chromium, driven over the DevTools protocol on a pipe (``--remote-debugging-pipe``: fds 3
and 4, NUL-separated JSON; no websocket library), and checked: a full-page screenshot is taken and is not blank; no
console error, uncaught exception or failed load; every plot's PNG decodes with real pixel variance, is decoded by
the browser, laid out visibly, and shows non-white pixels where it sits in the screenshot; the expected headings
and the verdict (or summary) the command computed are in the page's visible text.

Without a Chromium binary the tests skip, unless ``LRT_REQUIRE_BROWSER=1`` (``.ci/run`` sets it): then they fail.
``LRT_BROWSER`` names the binary explicitly."""

from __future__ import annotations

import base64
import fcntl
import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import time
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from lrt.cli import main

TIMEOUT_S = 90                      # one browser session: launch, load, checks, screenshot
WINDOW = (1200, 900)
REQUIRE = os.environ.get("LRT_REQUIRE_BROWSER") == "1"
PNG_RE = re.compile(r"""<img\b[^>]*\bsrc=["']data:image/png;base64,([A-Za-z0-9+/=]+)["']""")


def find_browser() -> str | None:
    explicit = os.environ.get("LRT_BROWSER")
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    for name in ("chromium", "chromium-browser", "google-chrome", "google-chrome-stable"):
        if path := shutil.which(name):
            return path
    return None


@pytest.fixture(scope="module")
def browser() -> str:
    exe = find_browser()
    if exe is None:
        msg = "no Chromium binary (chromium, chromium-browser, google-chrome or $LRT_BROWSER)"
        if REQUIRE:
            pytest.fail(f"{msg}, and LRT_REQUIRE_BROWSER=1: install it (apt-get install chromium)")
        pytest.skip(msg)
    return exe


# ---------------------------------------------------------------- a minimal DevTools-protocol client over a pipe

class Chromium:
    """One headless Chromium, its DevTools protocol on fds 3 (commands in) and 4 (replies and events out)."""

    def __init__(self, exe: str, workdir: Path, timeout: float = TIMEOUT_S):
        self.deadline = time.monotonic() + timeout
        self.stderr_path = workdir / "chromium-stderr.txt"
        profile = workdir / "profile"
        profile.mkdir(parents=True, exist_ok=True)
        cmd_r, self.cmd_w = os.pipe()
        self.out_r, out_w = os.pipe()
        # the child's ends above fd 9, so the shell can move them to 3 and 4 without clobbering one another
        cmd_r, out_w = (self._high(fd) for fd in (cmd_r, out_w))
        args = [exe, "--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                "--remote-debugging-pipe", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--force-device-scale-factor=1",
                f"--user-data-dir={profile}", "--no-first-run", "--no-default-browser-check", "--disable-extensions",
                "--disable-background-networking", "--disable-component-update", "--disable-sync", "--mute-audio",
                "--hide-scrollbars", "about:blank"]
        shell = f'exec "$@" 3<&{cmd_r} 4>&{out_w} {cmd_r}<&- {out_w}>&-'
        with open(self.stderr_path, "wb") as err:
            self.proc = subprocess.Popen(["bash", "-c", shell, "bash", *args], pass_fds=(cmd_r, out_w),
                                         stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=err,
                                         start_new_session=True)
        os.close(cmd_r)
        os.close(out_w)
        self.buf, self.next_id, self.events = b"", 0, []

    @staticmethod
    def _high(fd: int) -> int:
        high = fcntl.fcntl(fd, fcntl.F_DUPFD_CLOEXEC, 10)
        os.close(fd)
        return high

    def stderr_tail(self) -> str:
        try:
            return self.stderr_path.read_text(errors="replace")[-2000:]
        except OSError:
            return ""

    def _read(self) -> dict:
        while b"\0" not in self.buf:
            left = self.deadline - time.monotonic()
            if left <= 0 or not select.select([self.out_r], [], [], left)[0]:
                raise TimeoutError(f"Chromium gave no answer within {TIMEOUT_S} s; stderr:\n{self.stderr_tail()}")
            chunk = os.read(self.out_r, 1 << 20)
            if not chunk:
                raise EOFError(f"Chromium closed its DevTools pipe (exit {self.proc.poll()}); stderr:\n"
                               f"{self.stderr_tail()}")
            self.buf += chunk
        msg, self.buf = self.buf.split(b"\0", 1)
        return json.loads(msg)

    def send(self, method: str, params: dict | None = None, session: str | None = None) -> dict:
        self.next_id += 1
        msg = {"id": self.next_id, "method": method, "params": params or {}}
        if session:
            msg["sessionId"] = session
        try:
            os.write(self.cmd_w, json.dumps(msg).encode() + b"\0")
        except BrokenPipeError:
            raise EOFError(f"Chromium is gone (exit {self.proc.poll()}); stderr:\n{self.stderr_tail()}") from None
        while True:
            m = self._read()
            if m.get("id") == self.next_id:
                if "error" in m:
                    raise RuntimeError(f"{method}: {m['error']}")
                return m.get("result", {})
            self.events.append(m)

    def wait_event(self, method: str, session: str, after: int) -> dict:
        while True:
            for e in self.events[after:]:
                if e.get("method") == method and e.get("sessionId") == session:
                    return e
            after = len(self.events)
            self.events.append(self._read())

    def evaluate(self, session: str, expression: str):
        r = self.send("Runtime.evaluate", {"expression": expression, "returnByValue": True, "awaitPromise": True},
                      session)
        if "exceptionDetails" in r:
            raise RuntimeError(f"evaluating a check in the page failed: {r['exceptionDetails']}")
        return r["result"].get("value")

    def close(self) -> None:
        try:
            if self.proc.poll() is None:
                try:
                    self.send("Browser.close")
                except (EOFError, TimeoutError, RuntimeError, OSError):
                    pass
                try:
                    self.proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    os.killpg(self.proc.pid, signal.SIGKILL)     # the group this test started, by its id
                    self.proc.wait(timeout=10)
        finally:
            for fd in (self.cmd_w, self.out_r):
                try:
                    os.close(fd)
                except OSError:
                    pass


PAGE_STATE = """(async () => {
  await Promise.all([...document.images].map(i => i.decode().catch(() => null)));
  const shown = e => e.checkVisibility({checkOpacity: true, checkVisibilityCSS: true})
                     && e.getBoundingClientRect().width > 0 && e.getBoundingClientRect().height > 0;
  return {
    text: document.body ? document.body.innerText : "",
    dom: document.documentElement.outerHTML,
    headings: [...document.querySelectorAll("h1, h2, h3")].filter(shown).map(e => e.innerText.trim()),
    images: [...document.images].map(i => {
      const r = i.getBoundingClientRect();
      return {src: (i.getAttribute("src") || "").slice(0, 30), complete: i.complete, natural: [i.naturalWidth,
              i.naturalHeight], box: [r.left + window.scrollX, r.top + window.scrollY, r.width, r.height],
              shown: shown(i)};
    }),
  };
})()"""


def render_page(exe: str, page: Path, workdir: Path) -> dict:
    """Open ``page`` in a fresh headless Chromium: what it logged, its visible text, its DOM after rendering, its
    images as laid out, and a full-page screenshot written to ``workdir/screenshot.png``."""
    workdir.mkdir(parents=True, exist_ok=True)
    b = Chromium(exe, workdir)
    try:
        target = b.send("Target.createTarget", {"url": "about:blank"})["targetId"]
        s = b.send("Target.attachToTarget", {"targetId": target, "flatten": True})["sessionId"]
        for domain in ("Page", "Runtime", "Log"):
            b.send(f"{domain}.enable", session=s)
        mark = len(b.events)
        nav = b.send("Page.navigate", {"url": page.resolve().as_uri()}, s)
        b.wait_event("Page.loadEventFired", s, mark)
        state = b.evaluate(s, PAGE_STATE)
        size = b.send("Page.getLayoutMetrics", session=s)["cssContentSize"]
        w, h = int(size["width"]), int(size["height"])
        shot = b.send("Page.captureScreenshot", {"format": "png", "captureBeyondViewport": True,
                                                 "clip": {"x": 0, "y": 0, "width": w, "height": h, "scale": 1}}, s)
        shot_path = workdir / "screenshot.png"
        shot_path.write_bytes(base64.b64decode(shot["data"]))
        (workdir / "dom.html").write_text(state["dom"])
        logged = [e for e in b.events[mark:] if e.get("sessionId") == s]
        return {**state, "navigate_error": nav.get("errorText"), "screenshot": shot_path, "size": (w, h),
                "errors": console_errors(logged), "stderr": b.stderr_tail()}
    finally:
        b.close()


def console_errors(events: list[dict]) -> list[str]:
    out = []
    for e in events:
        p = e.get("params", {})
        if e.get("method") == "Runtime.consoleAPICalled" and p.get("type") in ("error", "assert"):
            out.append("console." + p["type"] + ": " + " ".join(str(a.get("value", a.get("description", "")))
                                                               for a in p.get("args", [])))
        elif e.get("method") == "Runtime.exceptionThrown":
            d = p.get("exceptionDetails", {})
            out.append("uncaught: " + str((d.get("exception") or {}).get("description") or d.get("text")))
        elif e.get("method") == "Log.entryAdded" and p.get("entry", {}).get("level") == "error":
            entry = p["entry"]
            out.append(f"log ({entry.get('source')}): {entry.get('text')} {entry.get('url', '')}".strip())
    return out


# ---------------------------------------------------------------- pixels

def pixels(img: Image.Image) -> np.ndarray:
    """RGB as floats, any transparency composited onto white (as the page's white background shows it)."""
    rgba = np.asarray(img.convert("RGBA"), dtype=np.float64)
    a = rgba[..., 3:4] / 255.0
    return rgba[..., :3] * a + 255.0 * (1 - a)


def blank_reason(rgb: np.ndarray, what: str) -> str | None:
    """Why ``rgb`` is not a picture of something: empty, one flat colour (no variance), or (almost) all white."""
    if rgb.size == 0:
        return f"{what} is empty"
    std = float(rgb.mean(axis=2).std())
    inked = float((rgb.min(axis=2) < 200).mean())
    if std < 3.0:
        return f"{what} is one flat colour (grey-level std {std:.2f})"
    if inked < 0.005:
        return f"{what} is (almost) all white ({inked:.2%} of its pixels inked)"
    return None


def plots_in(html_text: str) -> list[bytes]:
    return [base64.b64decode(m) for m in PNG_RE.findall(html_text)]


def page_problems(page: Path, r: dict, headings: list[str], shows: list[str], min_plots: int) -> list[str]:
    """Everything wrong with ``page`` as the browser rendered it (``r`` from :func:`render_page`)."""
    bad = []
    if r["navigate_error"]:
        bad.append(f"navigation failed: {r['navigate_error']}")
    bad += r["errors"]
    # the screenshot: a PNG of the whole page, not blank
    shot_bytes = r["screenshot"].read_bytes() if r["screenshot"].exists() else b""
    if not shot_bytes:
        bad.append("no screenshot was written")
        shot = None
    else:
        shot = pixels(Image.open(io.BytesIO(shot_bytes)))
        if shot.shape[1] < 600 or shot.shape[0] < 300:
            bad.append(f"the screenshot is only {shot.shape[1]}×{shot.shape[0]} px")
        if why := blank_reason(shot, "the screenshot"):
            bad.append(why)
    # the headings and the verdict as the reader sees them
    for h in headings:
        if h not in r["headings"]:
            bad.append(f"heading {h!r} is not visible (visible: {r['headings']})")
    for text in shows:
        if text not in r["text"]:
            bad.append(f"{text!r} is not in the page's visible text")
    # every plot: in the file, in the browser, on the screenshot
    plots = plots_in(page.read_text())
    if len(plots) < min_plots:
        bad.append(f"{len(plots)} plots in the page, expected at least {min_plots}")
    for i, data in enumerate(plots):
        try:
            img = Image.open(io.BytesIO(data))
            img.load()
        except Exception as e:  # noqa: BLE001 - any decoding failure is the finding
            bad.append(f"plot {i} does not decode as a PNG ({e})")
            continue
        if why := blank_reason(pixels(img), f"plot {i} ({img.width}×{img.height})"):
            bad.append(why)
    if len(r["images"]) != len(plots):
        bad.append(f"the browser laid out {len(r['images'])} images, the file holds {len(plots)} plots")
    for i, im in enumerate(r["images"]):
        x, y, w, h = im["box"]
        if not im["src"].startswith("data:image/png;base64,"):
            bad.append(f"image {i} is not an inline PNG ({im['src']!r}): the page is not self-contained")
        if not im["complete"] or min(im["natural"]) <= 0:
            bad.append(f"image {i} was not decoded by the browser (complete {im['complete']}, size {im['natural']})")
        if not im["shown"] or w < 50 or h < 50:
            bad.append(f"image {i} is not visibly laid out (box {w:.0f}×{h:.0f}, visible {im['shown']})")
        elif shot is not None:
            crop = shot[int(y) + 1:int(y + h) - 1, int(x) + 1:int(x + w) - 1]
            if why := blank_reason(crop, f"image {i} where the screenshot shows it"):
                bad.append(why)
    return bad


def check_page(browser: str, page: Path, workdir: Path, headings: list[str], shows: list[str], min_plots: int):
    assert page.is_file() and page.stat().st_size > 0, f"{page} was not written"
    r = render_page(browser, page, workdir)
    bad = page_problems(page, r, headings, shows, min_plots)
    assert not bad, (f"{page.name} in Chromium ({r['screenshot']}):\n  " + "\n  ".join(bad)
                     + f"\nChromium stderr (tail):\n{r['stderr']}")
    return r


# ---------------------------------------------------------------- the pages, from real runs with tiny budgets

Q = ["--no-progress"]
EVAL = ["--alphas=-0.2,0,0.2", "--n-random", "2", "--bootstrap", "50", "--kl-sequences", "2"]


def load(path: Path) -> dict:
    return json.loads(path.read_text())


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("runs")


def page_demo(d: Path):
    out = d / "demo"
    if not out.exists():
        assert main(["demo", "--tokens", "4000", "--context", "64", "--max-pairs", "20", "--no-alpha-search",
                     *EVAL, "--out", str(out)] + Q) == 0
    v = load(out / "results.json")["verdict"]["vectors"]
    return (out / "report.html", ["lrt transfer report", "Verdict", "Propensity curves", "Map quality"],
            [f"{n}\t{s['status']}" for n, s in v.items()], 2)


def page_evaluate(d: Path):
    page_demo(d)
    vec, out = d / "demo" / "vectors", d / "evaluate"
    assert main(["evaluate", "--model", "zoo-m", "--native", str(vec / "native"), "--vector",
                 str(vec / "transferred-direction"), *EVAL, "--out", str(out)] + Q) == 0
    assert main(["report", str(out)]) == 0
    v = load(out / "results.json")["verdict"]["vectors"]
    return (out / "report.html", ["lrt steering evaluation", "Verdict", "Propensity curves"],
            [f"{n}\t{s['status']}" for n, s in v.items()], 2)


def page_sweep(d: Path):
    out = d / "sweep"
    assert main(["sweep-layers", "--source", "zoo-xs", "--target", "zoo-s", "--source-layers", "0,1",
                 "--target-layers", "0,1", "--tokens", "3000", "--context", "64", "--eval-tokens", "300",
                 "--out", str(out), "-q"]) == 0
    res = load(out / "results.json")
    return (out / "report.html", ["Layer sweep: zoo-xs → zoo-s", "Held-out R² and CKA", "Stitched next-token loss",
                                  "Every pair"], [f"{s}\t{t}\tbest" for s, t in res["best_target"].items()], 1)


def page_sae_compare_init(d: Path):
    out = d / "sae-compare-init"
    assert main(["sae", "compare-init", "--tokens", "6000", "--small-tokens", "4000", "--map-tokens", "3000",
                 "--context", "64", "--k", "8", "--expansion", "2", "--sae-batch-size", "256", "--eval-every", "4",
                 "--refit-tokens", "3000", "--out", str(out), "-q"]) == 0
    saving = load(out / "results.json")["accountings"]["sae, nothing charged"]["saving"]
    return (out / "report.html", ["The large model's SAE: from scratch vs from the transferred SAE",
                                  "FLOPs to the target FVU"],
            ["sae, nothing charged", "—" if saving is None else f"{saving:.0%}"], 1)


def page_sae_features(d: Path):
    sae, out = d / "sae", d / "sae-features"
    assert main(["sae", "train", "--model", "zoo-xs", "--layer", "0", "--tokens", "4000", "--context", "64", "--k",
                 "8", "--expansion", "2", "--sae-batch-size", "256", "--eval-tokens", "600", "--delta-loss-tokens",
                 "0", "--out", str(sae), "-q"]) == 0
    # the SAE against itself: a real features page (every latent matched) at the cost of one SAE
    assert main(["sae", "features", "--transferred", str(sae), "--native", str(sae), "--model", "zoo-xs",
                 "--eval-tokens", "1500", "--eval-context", "64", "--out", str(out), "-q"]) == 0
    kinds = load(out / "features.json")["by_kind"]
    return (out / "features.html", ["Feature-level transfer on zoo-xs layer 0", "Best- and worst-matching latents"],
            [f"{k}\t" for k in kinds], 1)


def page_study(d: Path):
    out = d / "study"
    assert main(["study", "--source", "zoo-xs", "--target", "zoo-s", "--behaviours", "caa:refusal", "--pairs", "8",
                 "--max-pairs", "8", "--test-items", "54", "--search-items", "4", "--n-random", "4", "--search-random", "3",
                 "--contrast-sets", "caa:sycophancy", "--contrast-sets", "caa:myopic-reward", "--contrast-pairs", "6",
                 "--tokens", "2000", "--no-layer-search", "--bootstrap", "50", "--out", str(out)] + Q) == 0
    res = load(out / "results.json")
    s = res["summary"]
    # a tiny pool may give no predicted z (no pool set resembles the vector): then the plot and the page say so
    predicted = [r["signals"].get("predicted_z") for r in res["behaviours"].values()]
    return (out / "report.html", ["lrt study", "Summary", "Per behaviour", "Prediction before the test evaluation",
                                  "Propensity curves", "By test-item source"],
            [f"native vector steers (test: p < 0.05, CI beyond the random max)\t{s['native_steers']} of "
             f"{s['behaviours']}"]
            + [f"\t{r['status']}" for r in res["behaviours"].values()]
            + ["caa:refusal\ttest set\t50\t", "caa:refusal\tgenerate set\t4\t"]     # the verdict per source
            + ([] if any(z is not None for z in predicted) else ["nothing to plot"]), 1 + len(res["behaviours"]))


PAGES = {"demo": page_demo, "evaluate": page_evaluate, "sweep-layers": page_sweep,
         "sae-compare-init": page_sae_compare_init, "sae-features": page_sae_features, "study": page_study}


@pytest.mark.parametrize("name", list(PAGES))
def test_page_renders_in_chromium(name, browser, runs, tmp_path):
    page, headings, shows, min_plots = PAGES[name](runs)
    r = check_page(browser, page, tmp_path, headings, shows, min_plots)
    assert r["size"][1] > WINDOW[1] / 2 and r["screenshot"].stat().st_size > 10_000


WHITE = Image.new("RGB", (200, 120), "white")


def _png_uri(img: Image.Image) -> str:
    buf = io.BytesIO()
    img.save(buf, format="PNG")
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def test_the_checks_catch_a_broken_page(browser, tmp_path):
    """The same checks on a page that is broken on purpose: each defect is found (the checks can fail)."""
    page = tmp_path / "broken.html"
    page.write_text("<!doctype html><html><head><meta charset='utf-8'></head><body><h1>broken</h1>"
                    "<h2 style='display:none'>Verdict</h2><p>hello</p>"
                    "<script>console.error('planted console error')</script>"
                    "<script>planted_undefined_function()</script>"
                    f"<img src='{_png_uri(WHITE)}'/><img src='missing.png' width='300' height='200'/>"
                    "</body></html>")
    r = render_page(browser, page, tmp_path / "b")
    bad = "\n".join(page_problems(page, r, ["broken", "Verdict"], ["hello", "not on the page"], 2))
    assert "console.error: planted console error" in bad
    assert "uncaught: ReferenceError: planted_undefined_function is not defined" in bad
    assert "missing.png" in bad                                  # the failed load, logged by the browser
    assert "heading 'Verdict' is not visible" in bad             # in the DOM, hidden by CSS
    assert "'not on the page' is not in the page's visible text" in bad and "'hello'" not in bad
    assert "1 plots in the page, expected at least 2" in bad
    assert "plot 0 (200×120) is one flat colour" in bad          # the white PNG, decoded here
    assert "image 0 where the screenshot shows it is one flat colour" in bad
    assert "image 1 is not an inline PNG" in bad and "image 1 was not decoded by the browser" in bad
    assert "heading 'broken'" not in bad
