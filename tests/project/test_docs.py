"""The API reference covers the public API: every public name is rendered and documented.

``mkdocs build --strict`` (run by .ci/run) checks that the reference builds, its links
resolve and the docstrings parse; these tests check that nothing public is left out of it.
"""

import inspect
import re
from pathlib import Path

import recraft_async
import recraft_async.testing
from recraft_async.testing import pytest_plugin

DOCS = Path(__file__).resolve().parents[2] / "docs"
# A mkdocstrings directive: "::: recraft_async.AsyncRecraft" at the start of a line.
_DIRECTIVE = re.compile(r"^::: +([\w.]+)\s*$", re.MULTILINE)
_PUBLIC_MODULES = (recraft_async, recraft_async.testing)


def _rendered() -> set[str]:
    return {
        match.group(1)
        for page in DOCS.rglob("*.md")
        for match in _DIRECTIVE.finditer(page.read_text(encoding="utf-8"))
    }


def _public_names() -> list[str]:
    return [f"{module.__name__}.{name}" for module in _PUBLIC_MODULES for name in module.__all__]


def _public_objects() -> list[tuple[str, object]]:
    return [
        (f"{module.__name__}.{name}", getattr(module, name))
        for module in _PUBLIC_MODULES
        for name in module.__all__
    ]


def _own_doc(obj: object) -> str | None:
    """The object's own docstring: not one inherited from a base class."""
    doc = vars(obj).get("__doc__") if inspect.isclass(obj) else getattr(obj, "__doc__", None)
    return doc if isinstance(doc, str) and doc.strip() else None


def _public_members(cls: type) -> list[tuple[str, object]]:
    """The methods and properties a class defines itself, by public name."""
    members: list[tuple[str, object]] = []
    for name, value in vars(cls).items():
        if name.startswith("_"):
            continue
        if isinstance(value, (classmethod, staticmethod)):
            members.append((name, value.__func__))
        elif isinstance(value, property):
            members.append((name, value.fget))
        elif inspect.isfunction(value):
            members.append((name, value))
    return members


def test_the_docs_folder_has_the_pages():
    """The home page, the guides and the reference pages exist."""
    pages = {str(page.relative_to(DOCS)) for page in DOCS.rglob("*.md")}
    assert {"index.md", "guides/errors.md", "reference/client.md"} <= pages


def test_every_public_name_is_rendered_in_the_reference():
    """Each name in both __all__s has a ``:::`` directive, so a new public name needs docs."""
    missing = sorted(set(_public_names()) - _rendered())
    assert not missing, f"add a '::: NAME' directive under docs/reference/ for {missing}"


def test_every_directive_names_a_public_object():
    """The reference renders public names (or the pytest plugin), never private paths."""
    allowed = {*_public_names(), "recraft_async.errors", "recraft_async.testing"}
    allowed.add(pytest_plugin.__name__)
    assert _rendered() <= allowed


def test_every_public_class_and_function_has_a_docstring():
    """Each public class and function says what it is, in its own docstring."""
    undocumented = [
        name
        for name, obj in _public_objects()
        # A type alias (Literal[...]) holds no docstring of its own at run time: the
        # reference takes the string literal below its assignment, as for any variable.
        if (inspect.isclass(obj) or inspect.isroutine(obj)) and _own_doc(obj) is None
    ]
    assert not undocumented


def test_every_public_method_and_property_has_a_docstring():
    """Each public method, class method and property of a public class is documented."""
    undocumented = [
        f"{name}.{member}"
        for name, obj in _public_objects()
        if inspect.isclass(obj)
        for member, function in _public_members(obj)
        if _own_doc(function) is None
    ]
    assert not undocumented


def test_every_pytest_fixture_has_a_docstring():
    """The plugin's fixtures, rendered in the testing reference, are documented."""
    fixtures = ("kie_emulator_options", "kie_emulator", "kie_server", "kie_client")
    assert all(inspect.getdoc(getattr(pytest_plugin, name)) for name in fixtures)


def test_every_client_parameter_is_documented_in_the_class_docstring():
    """help(AsyncRecraft) explains each constructor parameter (its Args section)."""
    doc = inspect.getdoc(recraft_async.AsyncRecraft) or ""
    args = doc.partition("\nArgs:\n")[2].partition("\n\n")[0]  # up to the next section
    documented = set(re.findall(r"^    (\w+):", args, re.MULTILINE))
    parameters = set(inspect.signature(recraft_async.AsyncRecraft).parameters)
    assert parameters == documented


def test_the_readme_links_to_the_documentation():
    """README.md links the reference and every guide, and each link names a real page."""
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    links = set(re.findall(r"\]\((docs/[^)#]+)\)", readme))
    assert "docs/reference/client.md" in links
    assert {f"docs/guides/{page.name}" for page in (DOCS / "guides").glob("*.md")} <= links
    for link in links:
        assert (DOCS.parent / link).is_file(), link
