"""The package's import graph: no cycles (lazy imports inside functions
included), and no layer reaching up (the rewrite core knows nothing of
frontends, runners or the CLI; runners know nothing of frontends)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "torch_grouped_conv"
NAME = PACKAGE.name

# package prefix -> prefixes it must not import (a lower layer reaching up).
FORBIDDEN = {
    f"{NAME}.rewrite": (f"{NAME}.frontends", f"{NAME}.runners", f"{NAME}.api", f"{NAME}.cli", f"{NAME}.verify",
                        f"{NAME}.stages", f"{NAME}.bench"),
    f"{NAME}.runners": (f"{NAME}.frontends", f"{NAME}.api", f"{NAME}.cli", f"{NAME}.verify", f"{NAME}.bench"),
    f"{NAME}.stages": (f"{NAME}.frontends", f"{NAME}.api", f"{NAME}.cli", f"{NAME}.verify", f"{NAME}.bench"),
    f"{NAME}.frontends": (f"{NAME}.api", f"{NAME}.cli", f"{NAME}.verify", f"{NAME}.bench"),
    f"{NAME}.verify": (f"{NAME}.api", f"{NAME}.cli", f"{NAME}.bench"),
}


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """module -> the package modules it imports anywhere in its body."""
    files = {module_name(p): p for p in PACKAGE.rglob("*.py")}
    graph: dict[str, set[str]] = {}
    for mod, path in files.items():
        targets: set[str] = set()
        package = mod if path.name == "__init__.py" else mod.rpartition(".")[0]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                base = package.split(".")[: len(package.split(".")) - node.level + 1] if node.level else []
                source = ".".join(base + ([node.module] if node.module else []))
                targets.add(source)
                targets.update(f"{source}.{a.name}" for a in node.names)
            elif isinstance(node, ast.Import):
                targets.update(a.name for a in node.names)
        graph[mod] = {t for t in targets if t in files and t != mod}
    return graph


def cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        for w in graph[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for v in sorted(graph):
        if v not in index:
            visit(v)
    return found


def test_the_checker_finds_a_cycle() -> None:
    assert cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


def test_no_import_cycles() -> None:
    graph = import_graph()
    # A package __init__ re-exports its children: parent -> child edges are not layering.
    assert cycles(graph) == []


@pytest.mark.parametrize("layer", sorted(FORBIDDEN))
def test_no_layer_reaches_up(layer: str) -> None:
    graph = import_graph()
    bad = sorted((mod, target) for mod, targets in graph.items() if mod == layer or mod.startswith(layer + ".")
                 for target in targets if target.startswith(FORBIDDEN[layer]))
    assert bad == []
