"""Open server connections by address, so that a fault can close one without an answer.

ASGI has no way to say "close the connection and answer nothing": a server sends a 500
when the application raises or returns without a response. The loopback server registers
each connection here and the application aborts the socket itself. In-process (an httpx
ASGI transport) there is no socket, and the caller gets the error httpx raises when a real
server hangs up.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from typing import Any

_Key = tuple[object, object]
_lock = threading.Lock()
_aborts: dict[_Key, Callable[[], None]] = {}


def register(server: object, client: object, abort: Callable[[], None]) -> None:
    """Remember how to abort the connection from ``client`` to ``server``."""
    with _lock:
        _aborts[(server, client)] = abort


def unregister(server: object, client: object) -> None:
    """Forget a closed connection."""
    with _lock:
        _aborts.pop((server, client), None)


def abort(scope: Mapping[str, Any]) -> bool:
    """Abort the connection that carried ``scope``; False when it is not ours (in-process)."""
    server, client = scope.get("server"), scope.get("client")
    key = (tuple(server) if server else None, tuple(client) if client else None)
    with _lock:
        action = _aborts.get(key)
    if action is None:
        return False
    action()
    return True
