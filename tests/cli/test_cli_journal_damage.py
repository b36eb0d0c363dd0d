"""The command line given a damaged journal: refused or reported, never taken as new."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from conftest import EMULATOR_KEY, cli_in_process, emulator_process, save_image

INPUTS = 3
DAMAGED = "img0.png"  # the input whose row the row damages hit


# End to end, with an emulator process: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


def _sql(*statements: str):
    """A damage made with SQL statements on the journal."""

    def damage(path: Path) -> None:
        with sqlite3.connect(path) as conn:
            for statement in statements:
                conn.execute(statement)
        conn.close()

    return damage


def _flip_a_key(path: Path) -> None:
    """Change one character of a row's key in the table, not in its index."""
    with sqlite3.connect(path) as conn:
        fp = conn.execute("SELECT fingerprint FROM entries LIMIT 1").fetchone()[0]
    conn.close()
    data = bytearray(path.read_bytes())
    at = data.index(fp.encode() + b"upscale")  # the table's record: key, then operation
    data[at] ^= 0x01
    path.write_bytes(bytes(data))


FILE_DAMAGES = {
    "empty": (lambda p: p.write_bytes(b""), "the file is empty"),
    "not SQLite": (lambda p: p.write_bytes(b"just text\n" * 100), "not an SQLite database"),
    "table gone": (_sql("DROP TABLE entries"), "without a journal's entries table"),
    "other table": (
        _sql("DROP TABLE entries", "CREATE TABLE entries (fingerprint TEXT, state TEXT)"),
        "not a journal's",
    ),
    "newer version": (_sql("PRAGMA user_version=99"), "journal version 99"),
    "key unlike its index": (_flip_a_key, "integrity check"),
    "truncated": (lambda p: p.write_bytes(p.read_bytes()[: 4096 + 100]), "cannot be read"),
}


def _row(assignment: str):
    """A damage to the row of DAMAGED: ``UPDATE entries SET <assignment>``."""

    def damage(path: Path) -> None:
        with sqlite3.connect(path) as conn:
            conn.execute(
                f"UPDATE entries SET {assignment} WHERE source LIKE ?",  # noqa: S608 - ours
                (f"%{DAMAGED}",),
            )
        conn.close()

    return damage


ROW_DAMAGES = {
    "bad JSON": (_row("params='{not json'"), "Expecting"),
    "params not an object": (_row("params='[1]'"), "JSON object"),
    "wrong type": (_row("created_at='yesterday'"), "not a time"),
    "blob": (_row("result_urls=X'00ff'"), "bytes, not text"),
    "not UTF-8": (_row("task_id=CAST(X'74ff' AS TEXT)"), "task_id is bytes"),
    "missing task id": (_row("task_id=NULL"), "without a task id"),
    "unknown state": (_row("state='ARCHIVED'"), "'ARCHIVED'"),
    "unknown operation": (_row("operation='sharpen'"), "sharpen"),
}


@pytest.fixture(scope="module")
def batch(tmp_path_factory):
    """A finished batch of INPUTS images against an emulator process: (folder, url, journal)."""
    folder = tmp_path_factory.mktemp("batch")
    for i in range(INPUTS):
        save_image(folder / "in" / f"img{i}.png", (256, 256 + i))
    with emulator_process("--time-scale", "0.1", "--duration", "fixed:0.5") as url:
        first = cli_in_process("upscale", "in", *_common(url), cwd=folder)
        assert first.returncode == 0, first.stderr
        journal = folder / "out" / "journal.sqlite"
        yield folder, url, journal.read_bytes()


def _common(url: str) -> list[str]:
    return ["--base-url", url, "--api-key", EMULATOR_KEY, "--out", "out",
            "--poll-initial", "0.05", "--json"]  # fmt: skip


def _submits(url: str) -> int:
    """How many tasks the emulator has created so far."""
    stats = httpx.get(f"{url}/_emulator/stats").json()
    return sum(s["count"] for s in stats["submits"])


def _damaged(batch, damage) -> tuple[Path, str, Path]:
    """The batch with its journal as the first run left it, then damaged."""
    folder, url, original = batch
    journal = folder / "out" / "journal.sqlite"
    for leftover in (journal.with_name(journal.name + s) for s in ("-wal", "-shm")):
        leftover.unlink(missing_ok=True)
    journal.write_bytes(original)
    damage(journal)
    return folder, url, journal


@pytest.mark.parametrize("kind", list(FILE_DAMAGES))
def test_a_damaged_journal_file_is_refused_never_taken_as_new(batch, kind):
    """Upscale again and resume exit 2 with what is wrong and what to do; nothing is sent."""
    damage, wrong = FILE_DAMAGES[kind]
    folder, url, journal = _damaged(batch, damage)
    before, damaged_bytes = _submits(url), journal.read_bytes()
    for command in (["upscale", "in"], ["resume"]):
        run = cli_in_process(*command, *_common(url), cwd=folder)
        assert run.returncode == 2, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        assert f"the journal {Path('out') / 'journal.sqlite'} cannot be read" in run.stderr
        assert wrong in run.stderr
        if kind != "newer version":
            assert "move it aside" in run.stderr
        assert journal.read_bytes() == damaged_bytes  # left as it is: not made anew
    assert _submits(url) == before


@pytest.mark.parametrize("kind", list(ROW_DAMAGES))
def test_a_damaged_row_is_reported_by_input_and_the_rest_goes_on(batch, kind):
    """Its input is reported uncertain (exit 1), the others are done; nothing is paid twice."""
    damage, wrong = ROW_DAMAGES[kind]
    folder, url, _journal = _damaged(batch, damage)
    before = _submits(url)
    for command in (["upscale", "in"], ["resume"]):
        run = cli_in_process(*command, *_common(url), cwd=folder)
        assert run.returncode == 1, run.stdout + run.stderr
        assert "Traceback" not in run.stderr
        summary = json.loads(run.stdout)
        assert (summary["done"], summary["failed"], summary["uncertain"]) == (INPUTS - 1, 0, 1)
        (reported,) = summary["uncertain_inputs"]
        assert reported["input"].endswith(DAMAGED)
        assert "journal row is damaged" in reported["error"]
        assert wrong in reported["error"]
    assert _submits(url) == before
