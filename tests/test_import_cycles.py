"""No import cycles among the library's modules (.ci/check_import_cycles.py).

The whole package counts, the emulator (``recraft_async/testing/``) included: a cycle
between the core and the emulator is as much a cycle as one inside either.
"""

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / ".ci" / "check_import_cycles.py"


def _check(package, *options, cwd=ROOT):
    return subprocess.run(  # noqa: S603 - our own interpreter and script
        [sys.executable, str(SCRIPT), *options, str(package)],
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_library_has_no_import_cycles():
    """Module-level, function-local and TYPE_CHECKING imports all count."""
    run = _check("recraft_async")
    assert run.returncode == 0, run.stdout + run.stderr
    assert "no import cycles" in run.stdout


def _write(root, files):
    for name, text in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(text), encoding="utf-8")


def test_checker_finds_every_kind_of_cycle_and_skips_excluded_folders(tmp_path):
    """A cycle through a lazy import, a TYPE_CHECKING import or the package itself is found."""
    _write(
        tmp_path / "pkg",
        {
            "__init__.py": "from .f import g\n",
            "a.py": "from . import b\nx = 1\n",
            "b.py": "def late():\n    from .a import x\n    return x\n",
            "c.py": (
                "from typing import TYPE_CHECKING\nif TYPE_CHECKING:\n    from pkg.d import D\n"
            ),
            "d.py": "import pkg.c\nclass D: ...\n",
            "e.py": "import os\nfrom .sub import helper\n",
            "f.py": "from pkg import VALUE\ndef g(): ...\n",
            "sub/__init__.py": "from ..e import os\nhelper = 1\n",
        },
    )
    run = _check("pkg", "--exclude", "pkg/sub", cwd=tmp_path)
    assert run.returncode == 1
    out = run.stdout
    assert "3 import cycle(s)" in out
    assert "pkg.a -> pkg.b -> pkg.a" in out
    assert "pkg.b -> pkg.a (function, line 2)" in out
    assert "pkg.c -> pkg.d (TYPE_CHECKING, line 3)" in out
    assert "pkg.d -> pkg.c (module, line 1)" in out
    assert "pkg -> pkg.f -> pkg" in out
    assert "pkg.e" not in out
    assert "pkg.sub" not in out
    # Without the exclusion, the subpackage closes a cycle with pkg.e.
    assert "pkg.e -> pkg.sub -> pkg.e" in _check("pkg", cwd=tmp_path).stdout
