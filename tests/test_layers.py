"""The package's architecture, read from its imports: four layers, each importing only
from itself and the layers below it, and no import cycle between modules.

    compute  (the numbers)  <  store (files and tables)  <  runtime (how a job runs)  <  jobs

Every import counts, also one inside a function.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "glue_jobs" / "traffic_glue"
LAYERS = ("compute", "store", "runtime", "jobs")


def _modules() -> dict[str, Path]:
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
        name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
        found[name] = path
    return found


MODULES = _modules()


def _imports(path: Path) -> set[str]:
    """The package's modules `path` imports (`from traffic_glue.store import tables` is
    `traffic_glue.store.tables`; a name that is no module is its package)."""
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("traffic_glue"):
            for alias in node.names:
                child = f"{node.module}.{alias.name}"
                found.add(child if child in MODULES else node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("traffic_glue"))
    return found


GRAPH = {name: _imports(path) for name, path in MODULES.items()}


def layer_of(module: str) -> int | None:
    parts = module.split(".")
    return LAYERS.index(parts[1]) if len(parts) > 1 and parts[1] in LAYERS else None


def test_every_module_is_in_a_layer():
    outside = [m for m in MODULES if layer_of(m) is None and m != "traffic_glue"]
    assert outside == []
    assert {m.split(".")[1] for m in MODULES if m != "traffic_glue"} == set(LAYERS)


@pytest.mark.parametrize("layer", LAYERS)
def test_a_layer_imports_only_itself_and_the_layers_below(layer):
    level = LAYERS.index(layer)
    upward = sorted(
        f"{module} imports {imported}"
        for module, imports in GRAPH.items() if layer_of(module) == level
        for imported in imports if (layer_of(imported) or 0) > level
    )
    assert upward == []


def test_the_computation_imports_nothing_of_the_other_layers():
    """compute/ is the numbers alone: pure functions of DataFrames and plain values."""
    outside = sorted(
        f"{module} imports {imported}"
        for module, imports in GRAPH.items() if layer_of(module) == 0
        for imported in imports if layer_of(imported) != 0
    )
    assert outside == []


def _cycle() -> list[str] | None:
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(module: str) -> list[str] | None:
        state[module] = 1
        path.append(module)
        for imported in sorted(GRAPH.get(module, ())):
            if state.get(imported) == 1:
                return path[path.index(imported):] + [imported]
            if imported not in state:
                found = visit(imported)
                if found:
                    return found
        path.pop()
        state[module] = 2
        return None

    for module in sorted(GRAPH):
        if module not in state:
            found = visit(module)
            if found:
                return found
    return None


def test_no_import_cycle():
    assert _cycle() is None


def test_the_checks_see_a_cycle_and_an_upward_import():
    """The graph walk finds what it is for: a cycle put in by hand, an upward import."""
    GRAPH["traffic_glue.compute.schema"].add("traffic_glue.jobs.job")
    try:
        cycle = _cycle()
        assert cycle is not None and cycle[0] == cycle[-1]
        assert "traffic_glue.jobs.job" in cycle and "traffic_glue.compute.schema" in cycle
    finally:
        GRAPH["traffic_glue.compute.schema"].discard("traffic_glue.jobs.job")
    assert _cycle() is None
