"""The version has one source, recraft_async/_version.py: pyproject and the package read it."""

import importlib.metadata
import re
from pathlib import Path

import recraft_async

ROOT = Path(__file__).resolve().parents[2]


def test_installed_metadata_carries_the_package_version():
    """The installed distribution's version is __version__ (hatch reads it from the file)."""
    assert importlib.metadata.version("recraft-async") == recraft_async.__version__


def test_pyproject_reads_the_version_and_does_not_repeat_it():
    """The pyproject names no version of its own: it is dynamic, read from _version.py."""
    text = (ROOT / "pyproject.toml").read_text(encoding="utf-8")
    assert re.search(r"(?m)^version\s*=", text) is None
    assert re.search(r'(?m)^dynamic\s*=\s*\["version"\]', text)
    assert re.search(r'(?m)^\[tool\.hatch\.version\]\npath = "recraft_async/_version\.py"$', text)


def test_version_is_pep_440():
    """A plain PEP 440 version (release, optional pre/post/dev), as PyPI requires."""
    pattern = r"\d+(\.\d+)*((a|b|rc)\d+)?(\.post\d+)?(\.dev\d+)?"
    assert re.fullmatch(pattern, recraft_async.__version__)
