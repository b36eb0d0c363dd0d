"""Shared HTTP pieces: KIE's envelope, request helpers, and the fault guard."""

from __future__ import annotations

import json
import math
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING, Any

import anyio
import httpx
from starlette.responses import HTMLResponse, JSONResponse, Response

from . import _connections
from ._faults import Fault, FaultKind, Target

if TYPE_CHECKING:
    from starlette.requests import Request

    from ._service import KieService

RATE_LIMITED = "Rate limit exceeded"  # get-task-detail's documented 429 message
_REASONS = {
    400: "bad request",
    404: "not found",
    422: "validation error",
    429: RATE_LIMITED,
    455: "service unavailable: maintenance",
    500: "Internal server error",
    502: "bad gateway",
    503: "service unavailable",
}
_GATEWAY_PAGE = "<html><head><title>{code}</title></head><body><h1>{code}</h1></body></html>"


def success(data: Any) -> JSONResponse:
    """KIE's answer to a request that worked."""
    return JSONResponse({"code": 200, "msg": "success", "data": data})


def envelope(code: int, msg: str, *, status: int = 200) -> JSONResponse:
    """KIE's error answer: the body carries its own code; the HTTP status is usually 200.

    Only ``code`` and ``msg``, as every documented error example has them (no ``data``).
    """
    return JSONResponse({"code": code, "msg": msg}, status_code=status)


def not_ready(status: int = 200) -> JSONResponse:
    """KIE's documented answer (get-task-detail) for a task whose record is not readable yet."""
    return JSONResponse(
        {"code": 422, "msg": "recordInfo is null", "data": None}, status_code=status
    )


def rate_limited(retry_after: float) -> JSONResponse:
    """The documented 429: HTTP 429 too, with our ``Retry-After`` headers."""
    response = envelope(429, RATE_LIMITED, status=429)
    response.headers.update(retry_after_headers(retry_after))
    return response


def retry_after_headers(seconds: float) -> dict[str, str]:
    """``Retry-After`` in whole seconds (at least 1), and the precise ``retry-after-ms``."""
    return {
        "Retry-After": str(max(1, math.ceil(seconds))),
        "retry-after-ms": str(math.ceil(seconds * 1000)),
    }


def base_of(request: Request) -> str:
    """The base URL the caller used, so that answered URLs reach this same app."""
    return str(request.base_url).rstrip("/")


async def json_body(request: Request) -> Any:
    """The request's JSON, or None when it is not JSON."""
    try:
        return json.loads(await request.body())
    except ValueError:
        return None


class FaultGuard:
    """Runs a handler under the fault plan's next fault for its target."""

    def __init__(self, service: KieService) -> None:
        self._service = service

    async def refuse(self, answer: Response) -> Response:
        """``answer`` after the usual latency, with no fault drawn.

        For requests turned away at the door (the read limit): they never reach the part
        of the service that faults strike, so they must not use up a scripted fault.
        """
        await self._delay()
        return answer

    async def __call__(
        self,
        request: Request,
        target: Target,
        handle: Callable[[], Awaitable[Response]],
        *,
        latency: bool = True,
    ) -> Response:
        """Answer ``request`` with ``handle``, or with the fault that strikes it.

        ``latency=False`` for the result host, which ``latency`` (the API's) does not slow.
        """
        # Read the body first: the disconnect check below must not swallow it.
        await request.body()
        if latency:
            await self._delay()
        fault = self._service.faults.draw(target)
        if fault is None:
            return await handle()
        if fault.kind is FaultKind.DELAY and not fault.processed:
            await anyio.sleep(fault.seconds)
            if await request.is_disconnected():
                # The caller gave up while the request waited: it is never processed.
                return Response(status_code=499)
            return await handle()
        answer = await handle() if fault.processed else None
        if fault.kind is FaultKind.DELAY and answer is not None:
            await anyio.sleep(fault.seconds)
            return answer
        return await self._fail(request, fault)

    async def _delay(self) -> None:
        delay = self._service.answer_delay()
        if delay > 0:
            await anyio.sleep(delay)

    async def _fail(self, request: Request, fault: Fault) -> Response:
        if fault.kind is FaultKind.HTTP_ERROR:
            answer = envelope(fault.code, _REASONS.get(fault.code, "error"), status=fault.code)
            if fault.retry_after is not None:
                answer.headers.update(retry_after_headers(fault.retry_after))
            return answer
        if fault.kind is FaultKind.BODY_ERROR:
            return envelope(fault.code, _REASONS.get(fault.code, "error"))
        if fault.kind is FaultKind.NON_JSON:
            return HTMLResponse(_GATEWAY_PAGE.format(code=fault.code), status_code=fault.code)
        if _connections.abort(request.scope):
            # Let the server see the lost connection, so that it sends nothing more.
            await anyio.sleep(0.01)
            return Response(status_code=500)
        # In-process there is no socket: raise what httpx raises when a server hangs up.
        raise httpx.RemoteProtocolError("Server disconnected without sending a response.")
