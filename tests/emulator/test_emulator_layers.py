"""The emulator's modules form one-way layers: leaves, the service core, routes, the facade.

Read from the source with ``ast``, so every import counts: module level, inside
``if TYPE_CHECKING:`` and inside functions.
"""

from __future__ import annotations

import ast
import functools
from pathlib import Path

import pytest

PACKAGE = "recraft_async.testing"
HOME = Path(__file__).resolve().parents[2] / "recraft_async" / "testing"

# Lowest first; a module may import from its own layer or any layer below, never above.
LAYERS: dict[str, frozenset[str]] = {
    "leaf": frozenset(
        {"_tasks", "_faults", "_stats", "_duration", "_images", "_window", "_connections"}
        | {"_callbacks", "_replay", "_traffic", "_clock"}
    ),
    "service": frozenset({"_service"}),
    "routes": frozenset({"_http", "_control", "_uploads", "_results", "_app"}),
    "facade": frozenset({"_emulator"}),
    "entry": frozenset({"_server", "__main__", "__init__", "pytest_plugin"}),
}
RANK = {module: rank for rank, members in enumerate(LAYERS.values()) for module in members}
SERVICE = "_service"
ROUTES = LAYERS["routes"]


@functools.cache  # parsed once per run: the tests only read the trees
def _modules() -> dict[str, ast.Module]:
    return {path.stem: ast.parse(path.read_text(), str(path)) for path in HOME.glob("*.py")}


def _target(node: ast.ImportFrom, name: str | None) -> str | None:
    """The package module an import statement reaches, or None when it is outside."""
    if node.level:
        # Relative: "." is this package (the files sit side by side); ".." leaves it.
        if node.level > 1:
            return None
        base = node.module or ""
    elif node.module is not None and (node.module + ".").startswith(PACKAGE + "."):
        base = node.module.removeprefix(PACKAGE).lstrip(".")
    else:
        return None
    if base:
        return base.split(".")[0]
    # "from . import x": x is a submodule when a file of that name exists, else a name
    # of the package's __init__.
    return name if name is not None and (HOME / f"{name}.py").exists() else "__init__"


def _imports(module: str, tree: ast.Module) -> dict[str, list[ast.ImportFrom | ast.Import]]:
    """Every package module that ``module`` imports, with the statements that do it."""
    found: dict[str, list[ast.ImportFrom | ast.Import]] = {}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                if (alias.name + ".").startswith(PACKAGE + "."):
                    rest = alias.name.removeprefix(PACKAGE).lstrip(".")
                    found.setdefault(rest.split(".")[0] or "__init__", []).append(node)
        elif isinstance(node, ast.ImportFrom):
            for alias in node.names:
                target = _target(node, alias.name)
                if target is not None and target != module:
                    found.setdefault(target, []).append(node)
    return found


def _graph() -> dict[str, set[str]]:
    return {name: set(_imports(name, tree)) for name, tree in _modules().items()}


def _cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle in ``graph``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state:
                found = visit(nxt)
                if found is not None:
                    return found
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state:
            found = visit(start)
            if found is not None:
                return found
    return None


def _public_names(tree: ast.Module) -> set[str]:
    names: set[str] = set()
    for node in tree.body:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)):
            names.add(node.name)
        elif isinstance(node, ast.Assign):
            names.update(t.id for t in node.targets if isinstance(t, ast.Name))
        elif isinstance(node, ast.AnnAssign) and isinstance(node.target, ast.Name):
            names.add(node.target.id)
    return {name for name in names if not name.startswith("_")}


def test_the_cycle_finder_finds_a_cycle() -> None:
    """The checker itself: a planted cycle is reported, a one-way graph is not."""
    assert _cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert _cycle({"a": {"b", "c"}, "b": {"c"}, "c": set()}) is None


def test_the_import_reader_sees_every_kind_of_import() -> None:
    """TYPE_CHECKING blocks, function bodies and absolute package imports all count."""
    tree = ast.parse(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n"
        "    from ._emulator import KieEmulator\n"
        "def f():\n"
        "    from ._app import build_app\n"
        "import recraft_async.testing._tasks\n"
        "from recraft_async.testing import _faults, Duration\n"
        "from . import _images\n"
        "from .. import _limits\n"
    )
    assert set(_imports("_x", tree)) == {
        "_emulator",
        "_app",
        "_tasks",
        "_faults",
        "__init__",
        "_images",
    }


def test_every_module_has_a_layer() -> None:
    """A new module of the emulator must be placed in a layer here."""
    assert set(_modules()) == set(RANK)


def test_no_import_cycle() -> None:
    """The emulator's modules import one another with no cycle, counting every import."""
    assert _cycle(_graph()) is None


@pytest.mark.parametrize("module", sorted(RANK))
def test_imports_point_down_the_layers(module: str) -> None:
    """Each module imports only its own layer and the layers below."""
    upward = {
        target for target in _graph()[module] if target in RANK and RANK[target] > RANK[module]
    }
    assert not upward, f"{module} (layer {RANK[module]}) imports higher layers: {upward}"


@pytest.mark.parametrize("module", sorted(ROUTES))
def test_routes_use_only_the_service_public_names(module: str) -> None:
    """Routes import the service core by its public names, and never the facade."""
    modules = _modules()
    public = _public_names(modules[SERVICE])
    statements = _imports(module, modules[module])
    assert "_emulator" not in statements
    for node in statements.get(SERVICE, []):
        assert isinstance(node, ast.ImportFrom), "import the service's names, not the module"
        names = {alias.name for alias in node.names}
        assert names <= public, f"{module} imports non-public {names - public} from _service"


@pytest.mark.parametrize("module", sorted(ROUTES))
def test_routes_touch_no_private_member_of_another_object(module: str) -> None:
    """``x._name`` appears in routes only as ``self._name``: no private calls into the service."""
    tree = _modules()[module]
    private = [
        f"line {node.lineno}: {ast.unparse(node)}"
        for node in ast.walk(tree)
        if isinstance(node, ast.Attribute)
        and node.attr.startswith("_")
        and not node.attr.startswith("__")
        and not (isinstance(node.value, ast.Name) and node.value.id in {"self", "cls"})
    ]
    assert not private


@pytest.mark.parametrize("module", sorted(LAYERS["leaf"] | LAYERS["service"]))
def test_the_core_knows_no_http_server(module: str) -> None:
    """Leaves and the service core import neither starlette nor uvicorn."""
    tree = _modules()[module]
    roots = {
        (alias.name if isinstance(node, ast.Import) else node.module or "").split(".")[0]
        for node in ast.walk(tree)
        if isinstance(node, (ast.Import, ast.ImportFrom)) and not getattr(node, "level", 0)
        for alias in node.names
    }
    assert not roots & {"starlette", "uvicorn"}
