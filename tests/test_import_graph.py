"""Neither package has an import circle: every import statement, at module level or inside a function.

An import ``from package import name`` reads ``package``'s ``__init__``, so it counts as an edge to
the package (and to ``package.name`` too when that is a module). ``from package.module import name``
and ``import package.module`` count as an edge to the module only. Dynamic imports
(``importlib.import_module``) are how the course finds lessons by name, and are not edges.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from tests.helpers import ROOT

PACKAGES = {"course_utils": ROOT / "course_utils", "course_tools": ROOT / "tools" / "course_tools"}


def module_files(packages: dict[str, Path]) -> dict[str, Path]:
    """Every module of the packages by dotted name (a package by the name of its ``__init__``)."""
    found = {}
    for name, folder in packages.items():
        for path in sorted(folder.rglob("*.py")):
            parts = [name, *path.relative_to(folder).with_suffix("").parts]
            found[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return found


def imported_by(module: str, path: Path, modules: dict[str, Path]) -> set[str]:
    """The modules of ``modules`` that ``module``'s import statements name (see the module docstring)."""

    def known(name: str) -> str | None:
        while name and name not in modules:
            name = name.rpartition(".")[0]
        return name or None

    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    edges: set[str | None] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"), str(path))):
        if isinstance(node, ast.Import):
            edges.update(known(alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - (node.level - 1)]
                base = ".".join([*anchor, *([node.module] if node.module else [])])
            edges.add(known(base))
            edges.update(f"{base}.{alias.name}" for alias in node.names if f"{base}.{alias.name}" in modules)
    return {edge for edge in edges if edge and edge != module}


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected groups of more than one module (Tarjan's algorithm, iteratively)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    found: list[list[str]] = []
    for start in graph:
        if start in index:
            continue
        work = [(start, iter(sorted(graph[start])))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                group = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    group.append(member)
                    if member == node:
                        break
                if len(group) > 1:
                    found.append(sorted(group))
    return found


def import_graph(packages: dict[str, Path]) -> dict[str, set[str]]:
    modules = module_files(packages)
    return {module: imported_by(module, path, modules) for module, path in modules.items()}


def test_neither_package_has_an_import_circle():
    graph = import_graph(PACKAGES)
    assert len(graph) > 50, "the walk found the packages' modules"
    assert circles(graph) == []


@pytest.mark.parametrize("source, expected", [
    ("from pkg import a", [["pkg", "pkg.a", "pkg.b"]]),       # through the package's __init__
    ("from pkg.a import thing", [["pkg.a", "pkg.b"]]),       # module to module
    ("def later():\n    import pkg.a", [["pkg.a", "pkg.b"]]),  # an import inside a function counts too
    ("import os", []),
])
def test_the_walk_finds_a_circle_however_it_is_written(tmp_path, source, expected):
    folder = tmp_path / "pkg"
    folder.mkdir()
    (folder / "__init__.py").write_text("from pkg.a import thing\n")
    (folder / "a.py").write_text("from .b import other\nthing = 1\n")
    (folder / "b.py").write_text(f"{source}\nother = 2\n")
    assert circles(import_graph({"pkg": folder})) == expected
