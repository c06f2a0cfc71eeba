"""The package's shape (issue 16): no module over 450 lines, no import cycle, every module importable alone.

The import graph is read from the source (every ``import``, including those inside functions, which are
cycles too, only deferred), so a cycle fails here before it fails at run time in some import order.
"""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
PACKAGE = REPO / "qa"
MAX_LINES = 450


def _modules() -> dict[str, Path]:
    """{dotted name: file} of every module and package in qa/."""
    found = {}
    for path in sorted(PACKAGE.rglob("*.py")):
        parts = list(path.relative_to(REPO).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts.pop()
        found[".".join(parts)] = path
    return found


def _imports(name: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The qa modules that ``name`` imports, anywhere in its source (``from qa import x`` names qa.x when
    that is a module, the package qa otherwise)."""
    out = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            out |= {alias.name for alias in node.names if alias.name in modules}
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:  # relative: "." is the package itself, ".." its parent
                parts = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join(parts + ([base] if base else []))
            if base not in modules:
                continue
            for alias in node.names:
                out.add(f"{base}.{alias.name}" if f"{base}.{alias.name}" in modules else base)
    out.discard(name)
    return out


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Strongly connected components with more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        on_stack.add(node)
        for nxt in sorted(graph[node]):
            if nxt not in index:
                visit(nxt)
                low[node] = min(low[node], low[nxt])
            elif nxt in on_stack:
                low[node] = min(low[node], index[nxt])
        if low[node] == index[node]:
            component = []
            while True:
                top = stack.pop()
                on_stack.discard(top)
                component.append(top)
                if top == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def test_no_module_in_qa_is_over_450_lines():
    lengths = {path.relative_to(REPO).as_posix(): len(path.read_text(encoding="utf-8").splitlines())
               for path in _modules().values()}
    assert len(lengths) > 1 and lengths["qa/embed/encoders.py"] > 0  # the modules are read
    assert {name: n for name, n in lengths.items() if n > MAX_LINES} == {}


def test_the_import_graph_of_qa_has_no_cycle():
    modules = _modules()
    graph = {name: _imports(name, path, modules) for name, path in modules.items()}
    # A module's parent packages run before it whatever it imports: an edge to a parent is not a cycle.
    for name in graph:
        graph[name] = {m for m in graph[name] if not name.startswith(m + ".")}
    assert graph["qa.index.ray"] >= {"qa.index.engine"}  # the graph is read (a real edge is there)
    assert _cycles(graph) == []


def test_the_cycle_check_finds_a_cycle():
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]


@pytest.mark.slow
def test_every_qa_module_imports_alone_in_a_fresh_interpreter():
    """Each module imported first, in its own process: an order-dependent import breaks here."""
    failed = {}
    for name in _modules():
        done = subprocess.run([sys.executable, "-c", f"import {name}"], capture_output=True, text=True, cwd=REPO)
        if done.returncode:
            failed[name] = done.stderr.strip().splitlines()[-1]
    assert failed == {}
