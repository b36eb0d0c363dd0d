"""``AioHttpClient``: httpx's API over aiohttp's connections (the ``aiohttp`` extra), asyncio only.

The transport is the ``httpx-aiohttp`` package's, wrapped for two things it does not do:
refusing to run under trio, and keeping a failure after the request may have left from
looking like a failed connect (it maps every aiohttp ``ClientConnectionError``, a server
that hung up on a sent request included, to ``httpx.ConnectTimeout``, which the library
reads as "provably never sent" and so safe to send again).
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Iterator
from typing import TYPE_CHECKING, Any

import httpx

from ._core import _validate as check
from ._core._extras import needs_extra
from ._lifecycle import pool_options
from ._settings import DEFAULT_MAX_CONNECTIONS, DEFAULT_TIMEOUT
from .errors import InvalidInputError, WrongEventLoopError

if TYPE_CHECKING:
    from typing_extensions import Self

_MISSING_EXTRA = needs_extra("AioHttpClient", "aiohttp", "aiohttp and httpx-aiohttp")
_TRIO_REFUSED = (
    "AioHttpClient runs on asyncio only (aiohttp is asyncio's); under {backend}, leave "
    "http_client unset: AsyncRecraft's own httpx pool works on trio and asyncio alike"
)


class AioHttpClient(httpx.AsyncClient):
    """An ``httpx.AsyncClient`` whose requests go over aiohttp: less CPU per request, asyncio only.

    Pass it as ``AsyncRecraft(http_client=...)``. The library's code and errors are the
    same as with its own pool (the same httpx API, timeouts, bounded answers and typed
    errors); aiohttp's connections cost less CPU per request than httpx's own under many
    concurrent requests (benchmarks/README.md). It gets the settings the library gives
    its own pool: ``max_connections`` (kept alive too), no limit on the wait for a free
    connection, the same TLS context, environment proxies (HTTPS_PROXY, ALL_PROXY) for
    https only, as a CONNECT tunnel, and plain http always direct, so that no proxy sees
    the key's header.

    It needs the package's ``aiohttp`` extra (``recraft-async[aiohttp]``); without it,
    making one raises ``InvalidInputError`` naming the extra.

    It runs on asyncio only: under trio, entering it (``async with``) or its first request
    raises ``WrongEventLoopError``; there, leave ``http_client`` unset. As with any
    ``http_client``, the caller owns it: ``AsyncRecraft`` never closes it, so open and close
    it around the client::

        async with ra.AioHttpClient() as http, ra.AsyncRecraft(http_client=http) as client:
            result = await client.upscale("https://example.com/in.png")

    Args:
        max_connections: The size of its connection pool (kept alive too), as
            ``AsyncRecraft``'s own. At least 1.
        timeout: httpx's limit in seconds on connecting and on each read, as
            ``AsyncRecraft``'s own pool has; each API attempt's total deadline is
            ``AsyncRecraft``'s ``timeout``.

    Raises:
        InvalidInputError: The ``aiohttp`` extra is not installed, or an argument is out
            of range.

    """

    def __init__(
        self, *, max_connections: int = DEFAULT_MAX_CONNECTIONS, timeout: float = DEFAULT_TIMEOUT
    ) -> None:
        size = check.integer("max_connections", max_connections, minimum=1)
        pool = pool_options(size, check.positive("timeout", timeout))
        try:
            from httpx_aiohttp import AiohttpTransport  # noqa: PLC0415 - the optional extra
        except ImportError:
            raise InvalidInputError(_MISSING_EXTRA) from None

        def aiohttp_transport(proxy: httpx.Proxy | None = None) -> httpx.AsyncBaseTransport:
            inner = AiohttpTransport(limits=pool["limits"], verify=pool["verify"], proxy=proxy)
            return _AsyncioTransport(inner)

        # Read by _init_transport and _init_proxy_transport, which httpx calls from
        # __init__: its proxies from the environment become aiohttp transports too.
        self._aiohttp_transport = aiohttp_transport
        super().__init__(**pool, mounts={"http://": aiohttp_transport()})

    def _init_transport(self, *_args: Any, **_kwargs: Any) -> httpx.AsyncBaseTransport:
        """The default transport: aiohttp's, with this client's settings."""
        return self._aiohttp_transport()

    def _init_proxy_transport(
        self, proxy: httpx.Proxy, *_args: Any, **_kwargs: Any
    ) -> httpx.AsyncBaseTransport:
        """A proxy's transport (an environment proxy for https): aiohttp's too."""
        return self._aiohttp_transport(proxy)

    async def __aenter__(self) -> Self:
        _refuse_trio()
        return await super().__aenter__()


def _refuse_trio() -> None:
    """WrongEventLoopError unless the running event loop is asyncio's."""
    import sniffio  # noqa: PLC0415 - in the aiohttp extra, asked only once aiohttp is there

    backend = sniffio.current_async_library()
    if backend != "asyncio":
        raise WrongEventLoopError(_TRIO_REFUSED.format(backend=backend))


class _AsyncioTransport(httpx.AsyncBaseTransport):
    """httpx-aiohttp's transport, refused off asyncio, a failure after sending never "unsent"."""

    def __init__(self, inner: httpx.AsyncBaseTransport) -> None:
        self._inner = inner

    async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
        _refuse_trio()
        with _connect_errors_only_before_sending(request):
            response = await self._inner.handle_async_request(request)
        assert isinstance(response.stream, httpx.AsyncByteStream)  # noqa: S101 - the transport's own
        response.stream = _AnswerStream(response.stream, request)
        return response

    async def aclose(self) -> None:
        await self._inner.aclose()


class _AnswerStream(httpx.AsyncByteStream):
    """An answer's body: once it arrives, no failure is a connect failure."""

    def __init__(self, inner: httpx.AsyncByteStream, request: httpx.Request) -> None:
        self._inner = inner
        self._request = request

    async def __aiter__(self) -> AsyncIterator[bytes]:
        with _connect_errors_only_before_sending(self._request, answered=True):
            async for chunk in self._inner:
                yield chunk

    async def aclose(self) -> None:
        await self._inner.aclose()


@contextlib.contextmanager
def _connect_errors_only_before_sending(
    request: httpx.Request, *, answered: bool = False
) -> Iterator[None]:
    """ConnectError/ConnectTimeout for failures to connect only; the rest may have been sent.

    aiohttp raises ``ClientConnectorError`` (refused, unreachable: a ConnectError, not the
    ConnectTimeout httpx-aiohttp makes of it) and ``ConnectionTimeoutError`` only while it
    opens a connection, before writing anything; a server hanging up (``ServerDisconnected
    Error``) or a reset come after the request may have left, and become ``ReadError``.
    """
    import aiohttp  # noqa: PLC0415 - the optional extra, present once a transport exists

    try:
        yield
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        cause = exc.__cause__
        detail = str(exc) or type(cause).__name__
        if answered:
            raise httpx.ReadError(detail, request=request) from cause
        if isinstance(cause, aiohttp.ConnectionTimeoutError):
            raise
        if isinstance(cause, aiohttp.ClientConnectorError):
            # A refused or unreachable host, which httpx-aiohttp calls a timeout.
            raise httpx.ConnectError(detail, request=request) from cause
        raise httpx.ReadError(detail, request=request) from cause
