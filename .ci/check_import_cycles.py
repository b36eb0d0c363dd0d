#!/usr/bin/env python3
"""Find import cycles among a package's own modules; exit 1 if there is any.

Every import statement counts as an edge, wherever it stands: at module level, inside a
function (a "lazy" import still ties the two modules together) and under
``if TYPE_CHECKING:`` (the type checker follows it, and a cycle there is one refactoring
away from a real one). Each cycle is reported with the kind and line of each edge.

The parent packages a dotted import loads implicitly do not count: every submodule would
otherwise close a cycle with an ``__init__`` that re-exports it. An explicit import from
the package (``from . import x``, ``from recraft_async import X``) does count.

Usage: check_import_cycles.py [--exclude SUBPACKAGE]... PACKAGE_DIR
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import deque
from pathlib import Path
from typing import NamedTuple


class Edge(NamedTuple):
    """One import of ``target`` by ``source``, where it stands and of what kind."""

    source: str
    target: str
    kind: str  # "module", "function" or "TYPE_CHECKING"
    line: int


def dotted_name(root: Path, path: Path) -> str:
    """The module name of ``path`` (a file or a folder) in the package at ``root``."""
    parts = [root.name, *path.relative_to(root).with_suffix("").parts]
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def module_names(root: Path, excluded: list[Path]) -> dict[str, Path]:
    """Dotted name -> file, for every module of the package outside the excluded folders."""
    names: dict[str, Path] = {}
    for path in sorted(root.rglob("*.py")):
        if not any(path.is_relative_to(folder) for folder in excluded):
            names[dotted_name(root, path)] = path
    return names


def _is_type_checking(test: ast.expr) -> bool:
    if isinstance(test, ast.Name):
        return test.id == "TYPE_CHECKING"
    return isinstance(test, ast.Attribute) and test.attr == "TYPE_CHECKING"


class _Imports(ast.NodeVisitor):
    """Collects the imports of one module with the context each stands in."""

    def __init__(
        self, module: str, is_package: bool, known: dict[str, Path], excluded: set[str]
    ) -> None:
        self.module = module
        # The package a relative import of level 1 starts from.
        self.package = module if is_package else module.rpartition(".")[0]
        self.known = known
        self.excluded = excluded
        self.context: list[str] = []
        self.edges: list[Edge] = []

    def _kind(self) -> str:
        if "function" in self.context:
            return "function"
        return "TYPE_CHECKING" if "TYPE_CHECKING" in self.context else "module"

    def _add(self, target: str, line: int) -> None:
        if any(target == name or target.startswith(f"{name}.") for name in self.excluded):
            return
        # A name that is no module of its own (a class, a function) ties us to the closest
        # known module that encloses it; names outside the package tie us to nothing.
        while target and target not in self.known:
            target = target.rpartition(".")[0]
        edge = Edge(self.module, target, self._kind(), line)
        if target and target != self.module and edge not in self.edges:
            self.edges.append(edge)

    def visit_FunctionDef(self, node: ast.FunctionDef) -> None:
        self._nested(node, "function")

    def visit_AsyncFunctionDef(self, node: ast.AsyncFunctionDef) -> None:
        self._nested(node, "function")

    def visit_Lambda(self, node: ast.Lambda) -> None:
        self._nested(node, "function")

    def _nested(self, node: ast.AST, context: str) -> None:
        self.context.append(context)
        self.generic_visit(node)
        self.context.pop()

    def visit_If(self, node: ast.If) -> None:
        if _is_type_checking(node.test):
            self.visit(node.test)
            self.context.append("TYPE_CHECKING")
            for statement in node.body:
                self.visit(statement)
            self.context.pop()
            for statement in node.orelse:
                self.visit(statement)
        else:
            self.generic_visit(node)

    def visit_Import(self, node: ast.Import) -> None:
        for alias in node.names:
            self._add(alias.name, node.lineno)

    def visit_ImportFrom(self, node: ast.ImportFrom) -> None:
        if node.level:
            base = self.package
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            base = f"{base}.{node.module}" if node.module else base
        else:
            base = node.module or ""
        for alias in node.names:
            submodule = f"{base}.{alias.name}"
            # "from . import x" imports the module x when there is one, else a name of base.
            self._add(submodule if submodule in self.known else base, node.lineno)


def import_edges(known: dict[str, Path], excluded: set[str]) -> list[Edge]:
    """All imports between the known modules, one edge per import statement and target."""
    edges: list[Edge] = []
    for module, path in known.items():
        tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
        visitor = _Imports(module, path.name == "__init__.py", known, excluded)
        visitor.visit(tree)
        edges.extend(visitor.edges)
    return edges


def _reachable(start: str, graph: dict[str, set[str]]) -> set[str]:
    seen: set[str] = set()
    queue = deque([start])
    while queue:
        for child in graph[queue.popleft()]:
            if child not in seen:
                seen.add(child)
                queue.append(child)
    return seen


def strongly_connected(nodes: list[str], graph: dict[str, set[str]]) -> list[list[str]]:
    """The groups of modules that reach each other, each sorted (a package has dozens)."""
    reach = {node: _reachable(node, graph) for node in nodes}
    components: list[list[str]] = []
    placed: set[str] = set()
    for node in nodes:
        if node not in placed:
            group = sorted({node} | {other for other in reach[node] if node in reach[other]})
            placed.update(group)
            components.append(group)
    return components


def shortest_cycle(start: str, members: set[str], graph: dict[str, set[str]]) -> list[str]:
    """The shortest path from ``start`` back to itself inside one component."""
    previous: dict[str, str] = {}
    queue = deque([start])
    while queue:
        node = queue.popleft()
        for child in sorted(graph[node] & members):
            if child == start:
                path = [node]
                while path[-1] != start:
                    path.append(previous[path[-1]])
                return [*reversed(path), start]
            if child not in previous:
                previous[child] = node
                queue.append(child)
    return [start]


def find_cycles(package_dir: Path, excluded: list[Path]) -> list[tuple[list[str], list[Edge]]]:
    """Each cycle's component (sorted names) and the imports inside it."""
    root = package_dir.resolve()
    folders = [folder.resolve() for folder in excluded]
    known = module_names(root, folders)
    edges = import_edges(known, {dotted_name(root, folder) for folder in folders})
    graph: dict[str, set[str]] = {name: set() for name in known}
    for edge in edges:
        graph[edge.source].add(edge.target)
    cycles = []
    for component in strongly_connected(sorted(known), graph):
        members = set(component)
        if len(component) > 1 or component[0] in graph[component[0]]:
            inside = [e for e in edges if e.source in members and e.target in members]
            cycles.append((component, inside))
    return cycles


def describe(component: list[str], inside: list[Edge], graph: dict[str, set[str]]) -> str:
    """A component as text: a shortest cycle through its first module, then every import."""
    loop = shortest_cycle(component[0], set(component), graph)
    lines = [" -> ".join(loop)]
    lines += [f"    {e.source} -> {e.target} ({e.kind}, line {e.line})" for e in inside]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Print the cycles found in the package; 0 if there are none, else 1."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_dir", type=Path)
    parser.add_argument(
        "--exclude",
        action="append",
        default=[],
        type=Path,
        help="a folder whose modules are left out (imports into it are ignored too)",
    )
    args = parser.parse_args(argv)
    cycles = find_cycles(args.package_dir, args.exclude)
    if not cycles:
        print(f"no import cycles in {args.package_dir}")  # noqa: T201 - a command's report
        return 0
    print(f"{len(cycles)} import cycle(s) in {args.package_dir}:")  # noqa: T201
    for component, inside in cycles:
        graph: dict[str, set[str]] = {name: set() for name in component}
        for edge in inside:
            graph[edge.source].add(edge.target)
        print(describe(component, inside, graph))  # noqa: T201
    return 1


if __name__ == "__main__":
    sys.exit(main())
