"""pytest fixtures for testing an app against the KIE emulator, offline.

Registered through the ``pytest11`` entry point. Nothing heavy is imported here: the
emulator (and Pillow, starlette, uvicorn) load only when a test asks for a fixture, so the
plugin never breaks a test run that lacks the ``emulator`` extra.

The fixtures are async: use them from tests marked ``@pytest.mark.anyio``; plain tests
use ``kie_sync_server`` and ``kie_sync_client`` (the blocking ``Recraft``). Override
``kie_emulator_options`` to configure the emulators they build. A test gets one emulator:
``kie_emulator`` and ``kie_server`` used together are the same one, served on loopback.

    @pytest.fixture
    def kie_emulator_options():
        return {"rate": None, "read_rate": None, "time_scale": 0.0}
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import pytest

if TYPE_CHECKING:
    from recraft_async import AsyncRecraft, Recraft
    from recraft_async.testing import KieEmulator

# Tests want answers in milliseconds; the emulator's defaults mimic the service's pace.
_TEST_DEFAULTS: dict[str, Any] = {"time_scale": 0.001}


@pytest.fixture
def kie_emulator_options() -> dict[str, Any]:
    """Keyword arguments for the emulators the fixtures build; override to configure."""
    return {}


def _make(options: dict[str, Any]) -> KieEmulator:
    from recraft_async.testing import KieEmulator  # noqa: PLC0415 - see the module doc

    return KieEmulator(**{**_TEST_DEFAULTS, **options})


@pytest.fixture
def _kie_shared_emulator(kie_emulator_options: dict[str, Any]) -> KieEmulator:
    """The one emulator of a test: ``kie_emulator`` and ``kie_server`` both hand it out."""
    return _make(kie_emulator_options)


@pytest.fixture
async def kie_emulator(
    request: pytest.FixtureRequest, _kie_shared_emulator: KieEmulator
) -> AsyncIterator[KieEmulator]:
    """A running in-process emulator; reach it with ``kie_emulator.http_client()``.

    A test that also uses ``kie_server`` gets the same emulator from both (``kie_server
    is kie_emulator``), run and served by ``kie_server``: an image added through one is
    served by the other, and ``stats`` count the requests of both ways in.
    """
    if "kie_server" in request.fixturenames:
        # kie_server runs it (callbacks included) in the server's own thread and loop.
        yield _kie_shared_emulator
        return
    async with _kie_shared_emulator as emulator:
        yield emulator


@pytest.fixture
async def kie_server(_kie_shared_emulator: KieEmulator) -> AsyncIterator[KieEmulator]:
    """An emulator served on a loopback port; its ``base_url`` is the real URL.

    The same emulator as ``kie_emulator`` when a test uses both.
    """
    from recraft_async.testing import serve  # noqa: PLC0415 - see the module doc

    async with serve(_kie_shared_emulator):
        yield _kie_shared_emulator


@pytest.fixture
async def kie_client(kie_emulator: KieEmulator) -> AsyncIterator[AsyncRecraft]:
    """An open ``AsyncRecraft`` wired to ``kie_emulator`` in-process, polling fast.

    It paces itself to the emulator's limits (``submit_rate``, ``read_rate``), so that a
    test sees no 429 unless it changes one side.
    """
    from recraft_async import AsyncRecraft, PollPolicy  # noqa: PLC0415

    async with (
        kie_emulator.http_client() as http,
        AsyncRecraft(
            api_key=kie_emulator.api_key,
            base_url=kie_emulator.base_url,
            upload_base_url=kie_emulator.base_url,
            poll=PollPolicy(initial=0.01, factor=1.5, max_interval=0.1, timeout=30.0),
            submit_rate=kie_emulator.rate,
            read_rate=kie_emulator.read_rate,
            http_client=http,
        ) as client,
    ):
        yield client


@pytest.fixture
def kie_sync_server(kie_emulator_options: dict[str, Any]) -> Iterator[KieEmulator]:
    """``kie_server`` for plain (sync) tests: an emulator served on a loopback port."""
    from anyio.from_thread import start_blocking_portal  # noqa: PLC0415

    from recraft_async.testing import serve  # noqa: PLC0415 - see the module doc

    emulator = _make(kie_emulator_options)
    with start_blocking_portal() as portal, portal.wrap_async_context_manager(serve(emulator)):
        yield emulator


@pytest.fixture
def kie_sync_client(kie_sync_server: KieEmulator) -> Iterator[Recraft]:
    """An open blocking ``Recraft`` wired to ``kie_sync_server``, polling fast; plain tests.

    Paced to the emulator's limits, as ``kie_client`` is.
    """
    from recraft_async import PollPolicy, Recraft  # noqa: PLC0415

    with Recraft(
        api_key=kie_sync_server.api_key,
        base_url=kie_sync_server.base_url,
        upload_base_url=kie_sync_server.base_url,
        poll=PollPolicy(initial=0.01, factor=1.5, max_interval=0.1, timeout=30.0),
        submit_rate=kie_sync_server.rate,
        read_rate=kie_sync_server.read_rate,
    ) as client:
        yield client
