"""The tree shows the pipeline: imports point down it, no circles, no library import of the CLI, small modules,
no global side effects in library code."""

import ast
import re
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "lrt"

# The pipeline, bottom to top: a module may import its own package and anything ranked lower, never higher.
RANK = {"errors": 0, "_lazy": 0, "io": 1, "distributed": 1, "zoo.registry": 1, "zoo": 1, "models": 2, "data": 3, "stats": 3,
        "harvest": 4, "maps": 5, "steering": 6, "sae": 6, "probes": 6, "evaluate": 7, "pipelines": 8, "report": 9, "zoo.training": 10,
        "cli": 11, "__main__": 12, "__init__": 12}


def modules() -> dict[str, Path]:
    return {".".join(p.relative_to(SRC).with_suffix("").parts): p for p in SRC.rglob("*.py")}


def area(mod: str) -> str:
    for key in sorted(RANK, key=len, reverse=True):
        if mod == key or mod.startswith(key + "."):
            return key
    raise AssertionError(f"module lrt.{mod} is in no area of the pipeline; add it to RANK")


def imports(mod: str, path: Path) -> set[str]:
    """lrt-internal modules imported by ``mod`` (relative and absolute, at any depth)."""
    pkg = mod.split(".") if path.name == "__init__.py" else mod.split(".")[:-1]
    out = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom):
            if node.level:
                base = pkg[:len(pkg) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            elif node.module and node.module.startswith("lrt"):
                target = node.module[4:]
            else:
                continue
            for a in node.names:
                sub = f"{target}.{a.name}" if target else a.name
                out.add(sub if is_module(sub) else target)
        elif isinstance(node, ast.Import):
            out |= {a.name[4:] for a in node.names if a.name.startswith("lrt.")}
    return {m for m in (normal(m) for m in out if m) if m != normal(mod)}


def is_module(name: str) -> bool:
    rel = name.replace(".", "/")
    return (SRC / (rel + ".py")).exists() or (SRC / rel / "__init__.py").exists()


def normal(name: str) -> str:
    """``pkg`` and ``pkg.__init__`` are one module."""
    return name[:-len(".__init__")] if name.endswith(".__init__") else name


def test_imports_point_down_the_pipeline():
    bad = []
    for mod, path in modules().items():
        if mod.endswith("__init__") and mod.count(".") == 0:
            continue
        for dep in imports(mod, path):
            if RANK[area(dep)] > RANK[area(mod)]:
                bad.append(f"lrt.{mod} imports lrt.{dep} ({area(mod)} → {area(dep)} points up the pipeline)")
    assert not bad, "\n".join(bad)


def test_no_import_cycles():
    graph = {normal(m): imports(m, p) for m, p in modules().items()}
    state: dict[str, int] = {}

    def visit(m, stack):
        state[m] = 1
        for d in graph.get(m, ()):
            if state.get(d) == 1:
                raise AssertionError("import cycle: " + " → ".join(stack[stack.index(d):] + [d]))
            if d in graph and not state.get(d):
                visit(d, stack + [d])
        state[m] = 2

    for m in graph:
        if not state.get(m):
            visit(m, [m])


def test_library_never_imports_the_cli():
    for mod, path in modules().items():
        if area(mod) not in ("cli", "__main__"):
            assert not any(d.startswith("cli") for d in imports(mod, path)), mod


@pytest.mark.parametrize("mod", sorted(modules()))
def test_modules_stay_small(mod):
    assert len(modules()[mod].read_text().splitlines()) <= 300


def test_no_global_side_effects_in_library_code():
    """No global seeding, thread settings, backend switches or monkey-patched forwards at call or import time
    (the zoo trainer's worker processes and the CLI own their processes and may set threads)."""
    pattern = re.compile(r"torch\.manual_seed\(|set_num_threads\(|matplotlib\.use\(|matplotlib\.pyplot|plt\.|\.forward\s*=")
    allowed = {"zoo/training/loop.py": "set_num_threads(",      # inside the spawned worker process only
               "cli/zoo.py": "set_num_threads(",
               "cli/generate.py": "set_num_threads(",      # one thread while a small model decodes, then restored
               "zoo/training/recipe.py": "torch.manual_seed(",  # inside torch.random.fork_rng
               "zoo/training/card.py": "torch.manual_seed("}    # inside torch.random.fork_rng
    found = []
    for path in SRC.rglob("*.py"):
        rel = str(path.relative_to(SRC))
        for i, line in enumerate(path.read_text().splitlines(), 1):
            m = pattern.search(line)
            if m and not (rel in allowed and allowed[rel] in line):
                found.append(f"{rel}:{i}: {line.strip()}")
    assert not found, "\n".join(found)
    for rel in ("zoo/training/recipe.py", "zoo/training/card.py"):
        assert "fork_rng" in (SRC / rel).read_text()


def test_configs_document_every_field():
    import dataclasses
    import importlib

    from lrt.io.config import field_docs

    for mod in [m for m in modules() if m.endswith("config")]:
        module = importlib.import_module(f"lrt.{mod}")
        for obj in vars(module).values():
            if isinstance(obj, type) and dataclasses.is_dataclass(obj) and obj.__module__ == module.__name__ \
                    and obj.__name__.endswith("Config"):
                docs = field_docs(obj)
                missing = [f.name for f in dataclasses.fields(obj) if not docs.get(f.name)]
                assert not missing, f"{obj.__name__}: fields without a docstring: {missing}"
