"""Odd keys through a real HTTP stack (h11) and the command line, against loopback only."""

from __future__ import annotations

import pytest
from conftest import EMULATOR_KEY, EMULATOR_POLL, cli, emulator_process, red_circle

import recraft_async as ra

pytest.importorskip("PIL")
pytest.importorskip("uvicorn")

from recraft_async.testing import Duration, KieEmulator, serve

KEY = "sk-hostile-e2e-0123456789"
TAILS = {"CR": "\r", "CRLF": "\r\n", "space": " "}
# Keys the command line must refuse, per way of giving it (argv and the environment
# cannot hold NUL; a key file can).
UNUSABLE = {
    "inner CR": KEY[:6] + "\r" + KEY[6:],
    "non-ASCII": "sk-clé-" + KEY,
    "NUL": KEY + "\x00",
    "whitespace only": " \r\n",
}


# Key handling end to end, through processes and servers: in the full run, not the quick loop.
pytestmark = pytest.mark.slow


@pytest.mark.parametrize("tail", TAILS.values(), ids=TAILS)
@pytest.mark.anyio
async def test_a_key_with_a_windows_line_end_is_paid_once_over_real_http(tail):
    """h11 never sees the CR: the job runs and is paid once, not reported uncertain."""
    emulator = KieEmulator(api_key=KEY, duration=Duration.fixed(0.0), time_scale=1.0)
    url = emulator.add_image("c.png", red_circle())
    async with (
        serve(emulator) as base_url,
        ra.AsyncRecraft(api_key=KEY + tail, base_url=base_url, poll=EMULATOR_POLL) as client,
    ):
        result = await client.upscale(url)
    assert result.url.startswith(base_url)
    assert emulator.stats.tasks_created == 1


def _give_key(folder, way: str, key: str) -> tuple[list[str], dict[str, str]]:
    """The options and environment that give the command ``key`` in ``way``."""
    if way == "KIE_API_KEY":
        return [], {way: key}
    if way == "--api-key":
        return [way, key], {}
    (folder / "key.txt").write_bytes(key.encode())
    return [way, "key.txt"], {}


@pytest.mark.parametrize("way", ["KIE_API_KEY", "--api-key", "--api-key-file"])
def test_the_command_line_strips_a_windows_line_end(tmp_path, way):
    """A CRLF after the key, however given, is stripped: the command runs and exits 0."""
    options, env = _give_key(tmp_path, way, EMULATOR_KEY + "\r\n")
    with emulator_process() as url:
        run = cli("credits", "--base-url", url, *options, "--json", cwd=tmp_path, env=env)
    assert run.returncode == 0, run.stderr
    assert '"credits"' in run.stdout


USAGE_CASES = [
    pytest.param(way, key, id=f"{way}-{name}")
    for way in ("KIE_API_KEY", "--api-key", "--api-key-file")
    for name, key in UNUSABLE.items()
    if way == "--api-key-file" or "\x00" not in key
]


@pytest.mark.parametrize(("way", "key"), USAGE_CASES)
@pytest.mark.parametrize("as_json", [False, True], ids=["text", "json"])
def test_the_command_line_refuses_an_unusable_key_as_a_usage_error(tmp_path, way, key, as_json):
    """Exit 2 with a message naming the problem: no traceback, no key, nothing sent."""
    options, env = _give_key(tmp_path, way, key)
    json_flag = ["--json"] if as_json else []
    # Port 9 (discard) on loopback: were anything sent, the run would fail otherwise.
    run = cli("credits", "--base-url", "http://127.0.0.1:9", *options, *json_flag,
              cwd=tmp_path, env=env)  # fmt: skip
    assert run.returncode == 2, run.stderr
    assert "Traceback" not in run.stderr
    assert run.stdout == ""
    assert any(
        words in run.stderr
        for words in ("control character", "non-ASCII", "empty", "key alone, on one line")
    ), run.stderr
    stretch = KEY[len(KEY) // 2 :]
    assert stretch not in run.stderr
    assert "sk-hos" not in run.stderr
