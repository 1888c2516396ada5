"""The layout keeps the flow visible (docs/architecture.md): lower layers never import upper ones, no module-level
import cycle, and no production module grows past a size a newcomer can read, unless it is declarative data."""

from __future__ import annotations

import ast
from pathlib import Path

from ingestion.paths import REPO_ROOT

# a package may import the packages before it in this order, never those after it
LAYERS = ("ingestion", "expectations", "orchestration")
OUTSIDE = ("demo",)  # outside the production packages: may import ingestion; only the CLI imports it
MAX_LINES = 500
# declarative data, long by nature: the feed contracts and the mapping file's schema
DECLARATIVE = {"ingestion/contracts.py", "ingestion/export_mapping/spec.py"}


def _modules() -> dict[str, Path]:
    out = {}
    for package in (*LAYERS, *OUTSIDE):
        for path in sorted((REPO_ROOT / package).rglob("*.py")):
            parts = path.relative_to(REPO_ROOT).with_suffix("").parts
            name = ".".join(parts[:-1] if parts[-1] == "__init__" else parts)
            out[name] = path
    return out


def _imports(path: Path, top_level_only: bool) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    nodes = tree.body if top_level_only else list(ast.walk(tree))
    found = set()
    for node in nodes:
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{a.name}" for a in node.names)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
    return found


def test_lower_layers_never_import_upper_ones():
    broken = []
    for name, path in _modules().items():
        package = name.split(".")[0]
        allowed = {"ingestion", package} if package in OUTSIDE else set(LAYERS[: LAYERS.index(package) + 1])
        if package == "orchestration":
            allowed |= set(OUTSIDE)  # the CLI's demo command
        for imported in _imports(path, top_level_only=False):
            top = imported.split(".")[0]
            if top in (*LAYERS, *OUTSIDE) and top not in allowed:
                broken.append(f"{name} imports {imported}")
    assert broken == []


def find_cycles(graph: dict[str, set[str]]) -> list[str]:
    """Every cycle a depth-first walk meets, as 'a -> b -> a'."""
    cycles, state = [], {}

    def visit(node: str, stack: list[str]) -> None:
        state[node] = "open"
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == "open":
                cycles.append(" -> ".join([*stack[stack.index(nxt) :], nxt]))
            elif nxt not in state:
                visit(nxt, [*stack, nxt])
        state[node] = "done"

    for name in sorted(graph):
        if name not in state:
            visit(name, [name])
    return cycles


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == ["a -> b -> c -> a"]
    assert find_cycles({"a": {"b"}, "b": set()}) == []


def test_no_module_level_import_cycle():
    modules = _modules()
    graph = {
        name: {m for m in _imports(path, top_level_only=True) if m in modules and m != name}
        for name, path in modules.items()
    }
    assert find_cycles(graph) == []


def test_no_production_module_is_longer_than_a_newcomer_reads():
    long = {
        str(path.relative_to(REPO_ROOT)): n
        for name, path in _modules().items()
        if name.split(".")[0] in LAYERS and (n := len(path.read_text(encoding="utf-8").splitlines())) > MAX_LINES
    }
    assert set(long) <= DECLARATIVE, long
