"""The house's size rule: no class of the package over 300 lines of code."""

import ast
from pathlib import Path

from conftest import ROOT

MAX_CLASS_CODE_LINES = 300  # issue 20: the facade stays a facade, every class readable


def code_lines(source: str, node: ast.ClassDef) -> int:
    """Lines of ``node`` holding code: docstrings, comments and blank lines aside."""
    lines = set(range(node.lineno, (node.end_lineno or node.lineno) + 1))
    for inner in ast.walk(node):
        body = getattr(inner, "body", None)
        if isinstance(inner, ast.ClassDef | ast.FunctionDef | ast.AsyncFunctionDef) and body:
            first = body[0]
            if ast.get_docstring(inner) is not None:
                lines -= set(range(first.lineno, (first.end_lineno or first.lineno) + 1))
    text = source.splitlines()
    return sum(1 for n in lines if text[n - 1].strip() and not text[n - 1].lstrip().startswith("#"))


def classes(root: Path) -> dict[str, int]:
    """Every class under ``root``, as ``path:Name``, with its lines of code."""
    sizes = {}
    for path in sorted(root.rglob("*.py")):
        source = path.read_text(encoding="utf-8")
        for node in ast.walk(ast.parse(source)):
            if isinstance(node, ast.ClassDef):
                sizes[f"{path.relative_to(ROOT)}:{node.name}"] = code_lines(source, node)
    return sizes


def test_no_class_is_over_300_lines_of_code():
    """Each class of recraft_async reads in one sitting: at most 300 lines of code."""
    sizes = classes(ROOT / "recraft_async")
    assert "recraft_async/_client.py:AsyncRecraft" in sizes
    assert {name: n for name, n in sizes.items() if n > MAX_CLASS_CODE_LINES} == {}


def test_the_count_leaves_out_docstrings_and_comments():
    """The counter counts code only, so the rule above measures what it says."""
    source = 'class A:\n    """Doc.\n\n    More."""\n\n    # why\n    x = 1\n'
    [node] = ast.parse(source).body
    assert isinstance(node, ast.ClassDef)
    assert code_lines(source, node) == 2  # "class A:" and "x = 1"
