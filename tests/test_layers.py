"""The folders are layers: a module imports only its own layer or lower ones, and no import
cycle exists, counting the imports made inside functions too (docs/ARCHITECTURE.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# Lowest first. pipeline.training.datasets reads labelled datasets and its label-set names are
# the choices of a shared option, so it sits with the shared command layer.
LAYERS = (
    ("transforms.core",),
    ("transforms.ingest", "transforms.knowledge", "transforms.output"),
    ("transforms.stages",),
    ("transforms.models",),
    ("transforms.handlers",),
    ("pipeline.commands", "pipeline.flags", "pipeline.options", "pipeline.checks", "pipeline.runner", "pipeline.run_output",
     "pipeline.progress", "pipeline.graph", "pipeline.shards", "pipeline.training.datasets", "pipeline.workdir"),
    ("pipeline.tag", "pipeline.report", "pipeline.runs_table", "pipeline.flex_template", "pipeline.training",
     "pipeline.quality", "pipeline.weights"),
    ("pipeline.demo",),
    ("pipeline.cli",),
)


def layer(module: str) -> int:
    best = max((prefix for names in LAYERS for prefix in names if module == prefix or module.startswith(prefix + ".")),
               key=len)
    return next(i for i, names in enumerate(LAYERS) if best in names)


def modules() -> dict[str, Path]:
    out = {}
    for path in [*ROOT.glob("transforms/**/*.py"), *ROOT.glob("pipeline/**/*.py")]:
        name = ".".join(path.relative_to(ROOT).with_suffix("").parts).removesuffix(".__init__")
        out[name] = path
    return out


def imports(path: Path, known: set[str]) -> set[str]:
    """Project modules ``path`` imports anywhere in it (``from pkg import module`` included)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module, *(f"{node.module}.{a.name}" for a in node.names)]
        elif isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        found |= {n for n in names if n in known}
    return found


def graph() -> dict[str, set[str]]:
    mods = modules()
    packages = {m for m, p in mods.items() if p.name == "__init__.py"}
    return {m: imports(p, set(mods)) - packages - {m} for m, p in mods.items() if m not in packages}


def test_no_module_imports_a_higher_layer():
    upward = [(a, b) for a, deps in graph().items() for b in deps if layer(b) > layer(a)]
    assert upward == []


def test_no_import_cycle():
    edges = graph()
    state: dict[str, int] = {}
    cycles = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for nxt in sorted(edges.get(node, ())):
            if state.get(nxt) == 1:
                cycles.append(stack[stack.index(nxt):] + [nxt])
            elif nxt not in state:
                visit(nxt, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(edges):
        if node not in state:
            visit(node, [])
    assert cycles == []


def test_every_module_has_a_layer_and_the_checker_sees_imports():
    edges = graph()
    assert all(isinstance(layer(m), int) for m in edges)
    assert "transforms.core.registry" in edges["transforms.stages.tagger"]
    assert "transforms.stages.tagger" in edges["transforms.handlers.tagger"]
    assert layer("pipeline.cli") > layer("transforms.handlers.tagger") > layer("transforms.core.registry")
