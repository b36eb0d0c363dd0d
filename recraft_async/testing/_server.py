"""``serve()``: the emulator on a real loopback port, in a thread with its own event loop.

The thread keeps the server's work off the caller's loop and lets asyncio and trio callers
use the same server (uvicorn needs asyncio; the caller may be on trio).
"""

from __future__ import annotations

import contextlib
import ipaddress
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable
from typing import TYPE_CHECKING, Any

import anyio
import anyio.to_thread
import uvicorn
from uvicorn.protocols.http.h11_impl import H11Protocol

from . import _connections

if TYPE_CHECKING:
    from ._emulator import KieEmulator

_READY_POLL = 0.005
_START_TIMEOUT = 10.0


class _AbortableH11(H11Protocol):
    """uvicorn's h11 protocol, registered so that a fault can drop the connection unanswered."""

    # Any: uvicorn hands an asyncio transport (its own loop, in the server's thread); the
    # library itself stays on anyio, so asyncio is not imported even for the annotation.
    def connection_made(self, transport: Any) -> None:
        super().connection_made(transport)
        _connections.register(self.server, self.client, transport.abort)

    def connection_lost(self, exc: Exception | None) -> None:
        _connections.unregister(self.server, self.client)
        super().connection_lost(exc)


def loopback_socket(host: str, port: int) -> socket.socket:
    """A bound TCP socket on a loopback address; anything else is refused."""
    if host != "localhost" and not ipaddress.ip_address(host).is_loopback:
        raise ValueError(f"the emulator serves on loopback addresses only, not {host!r}")
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets that say they are TCP,
    # and without it every answer waits 40 ms for a delayed ACK.
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, port))
    return sock


def url_of(sock: socket.socket) -> str:
    """``http://host:port`` of a bound socket."""
    host, port = sock.getsockname()[:2]
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


async def run_server(
    emulator: KieEmulator, sock: socket.socket, ready: Callable[[uvicorn.Server], None]
) -> None:
    """Serve ``emulator`` on ``sock`` (asyncio only) until the server is told to exit."""
    config = uvicorn.Config(
        emulator.app,
        http=_AbortableH11,
        lifespan="off",
        log_level="warning",
        access_log=False,
        timeout_graceful_shutdown=1,
    )
    server = uvicorn.Server(config)
    async with emulator, anyio.create_task_group() as group:
        group.start_soon(lambda: server.serve(sockets=[sock]))
        # uvicorn offers a flag, not an event, for "listening".
        while not server.started and not server.should_exit:  # noqa: ASYNC110
            await anyio.sleep(_READY_POLL)
        ready(server)


class _ServerThread(threading.Thread):
    def __init__(self, emulator: KieEmulator, sock: socket.socket) -> None:
        super().__init__(name="kie-emulator", daemon=True)
        self._emulator = emulator
        self._sock = sock
        self._ready = threading.Event()
        self.server: uvicorn.Server | None = None
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            anyio.run(run_server, self._emulator, self._sock, self._on_ready, backend="asyncio")
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            self.error = exc
        finally:
            self._ready.set()

    def _on_ready(self, server: uvicorn.Server) -> None:
        self.server = server
        self._ready.set()

    def wait_ready(self) -> None:
        if not self._ready.wait(_START_TIMEOUT) or self.server is None or not self.server.started:
            raise RuntimeError("the emulator's server did not start") from self.error

    def stop(self) -> None:
        if self.server is not None:
            self.server.should_exit = True
        deadline = time.monotonic() + _START_TIMEOUT
        while self.is_alive() and time.monotonic() < deadline:
            self.join(0.05)


@contextlib.asynccontextmanager
async def serve(
    emulator: KieEmulator, host: str = "127.0.0.1", port: int = 0
) -> AsyncIterator[str]:
    """Serve ``emulator`` on a real loopback port; yields its base URL (``http://host:port``).

    Works under asyncio and trio alike: the server runs in its own thread and event loop,
    and runs the emulator (``async with emulator``) there, so callbacks are sent.
    """
    sock = loopback_socket(host, port)
    url = url_of(sock)
    previous, emulator.base_url = emulator.base_url, url
    thread = _ServerThread(emulator, sock)
    try:
        thread.start()
        await anyio.to_thread.run_sync(thread.wait_ready)
        yield url
    finally:
        with anyio.CancelScope(shield=True):
            await anyio.to_thread.run_sync(thread.stop)
        sock.close()
        emulator.base_url = previous
