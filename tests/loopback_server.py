"""A tiny HTTP/1.1 server on 127.0.0.1 that answers every request with canned bytes.

For answers no real server would send on purpose: a body trickling a byte at a time, a
compression bomb. Works under asyncio and trio (anyio's listener); nothing leaves loopback.
"""

from __future__ import annotations

import contextlib

import anyio
import anyio.abc


def http_head(content_type: str, length: int) -> bytes:
    """The status line and headers of a 200 answer."""
    return (
        f"HTTP/1.1 200 OK\r\nContent-Type: {content_type}\r\nContent-Length: {length}\r\n\r\n"
    ).encode()


async def read_request(stream: anyio.abc.ByteStream) -> bytes:
    """One HTTP/1.1 request's head, its body (by Content-Length) read and dropped."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += await stream.receive()
    head, _, rest = data.partition(b"\r\n\r\n")
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
    while len(rest) < length:
        rest += await stream.receive()
    return head


@contextlib.asynccontextmanager
async def trickle_server(head: bytes, body: bytes, *, every: float = 0.1):
    """Serve ``head`` at once, then ``body`` a byte every ``every`` seconds (0: all at once).

    Yields the base URL and the list of request heads received so far.
    """
    requests: list[bytes] = []

    async def answer(stream: anyio.abc.ByteStream) -> None:
        async with stream:
            with contextlib.suppress(anyio.BrokenResourceError, anyio.EndOfStream, OSError):
                requests.append(await read_request(stream))
                await stream.send(head)
                if not every:
                    await stream.send(body)
                for i in range(len(body) if every else 0):
                    await anyio.sleep(every)
                    await stream.send(body[i : i + 1])

    listener = await anyio.create_tcp_listener(local_host="127.0.0.1")
    port = listener.extra(anyio.abc.SocketAttribute.local_port)  # noqa: S610 - anyio, not Django
    async with listener, anyio.create_task_group() as group:
        group.start_soon(listener.serve, answer)
        try:
            yield f"http://127.0.0.1:{port}", requests
        finally:
            group.cancel_scope.cancel()
