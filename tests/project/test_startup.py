"""Start-up: what ``import recraft_async`` and ``recraft-async --version`` load (issue 23.5)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

import recraft_async as ra
from recraft_async import _entry

ROOT = Path(__file__).resolve().parents[2]
# Heavy packages a bare import or --version has no use for.
HEAVY = ("httpx", "httpcore", "anyio", "attrs", "cattrs", "sqlite3", "opentelemetry", "rich")


def _loaded_after(code: str) -> set[str]:
    """The top-level packages in sys.modules after ``code`` runs in a fresh interpreter."""
    probe = code + "\nimport sys, json; print(json.dumps(sorted(sys.modules)))"
    done = subprocess.run(  # noqa: S603 - this interpreter, our own code
        [sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
        # Without coverage's start-up hook (CI measures subprocesses): coverage itself
        # loads sqlite3 for its data, which says nothing of what the package loads.
        env={
            **{k: v for k, v in os.environ.items() if not k.startswith("COVERAGE_")},
            "PYTHONPATH": str(ROOT),
        },
    )
    return set(json.loads(done.stdout.splitlines()[-1]))


@pytest.mark.slow  # a fresh Python process
def test_import_loads_none_of_the_heavy_packages():
    """``import recraft_async`` loads no HTTP stack, event loop, attrs, SQLite or tracing."""
    loaded = {name.split(".")[0] for name in _loaded_after("import recraft_async")}
    assert not loaded & set(HEAVY)


@pytest.mark.slow  # a fresh Python process
def test_the_version_answers_before_the_cli_loads():
    """``recraft-async --version`` loads neither the CLI nor anything heavy."""
    loaded = _loaded_after("from recraft_async._entry import main; main(['--version'])")
    assert "recraft_async.cli" not in loaded
    assert not {name.split(".")[0] for name in loaded} & set(HEAVY)


@pytest.mark.slow  # a fresh Python process
def test_a_client_without_tracing_or_journal_loads_no_sqlite_rich_or_tracing():
    """Making a client loads httpx but not OpenTelemetry, rich's console or the CLI."""
    loaded = _loaded_after(
        "from recraft_async import AsyncRecraft\nAsyncRecraft(api_key='k', tracing=False)"
    )
    assert "httpx" in loaded
    assert not loaded & {"opentelemetry", "recraft_async.cli", "recraft_async._core._tracing"}


def test_the_version_is_the_packages(capsys):
    """``--version`` prints what ``recraft_async.__version__`` says, as argparse did."""
    assert _entry.main(["--version"]) == 0
    assert capsys.readouterr().out == f"recraft-async {ra.__version__}\n"


def test_other_arguments_go_to_the_cli(capsys):
    """Anything but a bare ``--version`` is the CLI's: its usage error for a bad command."""
    with pytest.raises(SystemExit) as exited:
        _entry.main(["no-such-command"])
    assert exited.value.code == 2
    assert "invalid choice: 'no-such-command'" in capsys.readouterr().err


def test_every_public_name_resolves():
    """Each name of ``__all__`` is there when first used, and ``dir()`` lists it."""
    for name in ra.__all__:
        assert getattr(ra, name) is not None
        assert name in dir(ra)
    assert ra.AsyncRecraft.__module__ == "recraft_async._client"
