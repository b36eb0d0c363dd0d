"""The service's endpoints: both dialects' submits and status reads, and the balance.

Error answers follow KIE's documented examples: only ``code`` and ``msg``, with HTTP 200
except for 429 (and for unknown routes and methods, which answer 404 and 405).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.responses import JSONResponse
from starlette.routing import Route

from recraft_async._core._models import Operation

from ._control import ControlRoutes
from ._faults import Target
from ._http import FaultGuard, base_of, envelope, json_body, not_ready, rate_limited, success
from ._results import ResultRoutes
from ._service import NotReady
from ._tasks import MARKET_MODELS, credit_number
from ._uploads import UploadRoutes

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ._service import KieService

_UPSCALE_FORMATS = {"PNG": "PNG", "JPG": "JPG", "JPEG": "JPG"}
# Two documented 401 bodies: get-task-detail's for status reads, and the "Getting
# Started" page's general one, which we answer everywhere else (submits, the balance).
_READ_UNAUTHORISED = "Unauthorized"
_UNAUTHORISED = "You do not have access permissions"


class ApiRoutes:
    """The service's endpoints: both dialects' submits and reads, and the balance."""

    def __init__(self, service: KieService, guard: FaultGuard) -> None:
        self._service = service
        self._guard = guard

    def routes(self) -> list[Route]:
        """Starlette routes for the service's endpoints."""
        return [
            Route("/api/v1/recraft/upscale", self.upscale, methods=["POST"]),
            Route("/api/v1/recraft/remove-background", self.remove_background, methods=["POST"]),
            Route("/api/v1/recraft/upscale/record-info", self.read_upscale, methods=["GET"]),
            Route(
                "/api/v1/recraft/remove-background/record-info",
                self.read_remove_background,
                methods=["GET"],
            ),
            Route("/api/v1/jobs/createTask", self.create_task, methods=["POST"]),
            Route("/api/v1/jobs/recordInfo", self.read_market, methods=["GET"]),
            Route("/api/v1/chat/credit", self.credit, methods=["GET"]),
        ]

    async def upscale(self, request: Request) -> Response:
        """``POST /api/v1/recraft/upscale``."""
        return await self._submit(request, Operation.UPSCALE, market=False)

    async def remove_background(self, request: Request) -> Response:
        """``POST /api/v1/recraft/remove-background``."""
        return await self._submit(request, Operation.REMOVE_BACKGROUND, market=False)

    async def create_task(self, request: Request) -> Response:
        """``POST /api/v1/jobs/createTask`` (the market dialect)."""
        return await self._submit(request, None, market=True)

    async def read_upscale(self, request: Request) -> Response:
        """``GET /api/v1/recraft/upscale/record-info``."""
        return await self._read(request, Operation.UPSCALE, market=False)

    async def read_remove_background(self, request: Request) -> Response:
        """``GET /api/v1/recraft/remove-background/record-info``."""
        return await self._read(request, Operation.REMOVE_BACKGROUND, market=False)

    async def read_market(self, request: Request) -> Response:
        """``GET /api/v1/jobs/recordInfo``."""
        return await self._read(request, None, market=True)

    async def credit(self, request: Request) -> Response:
        """``GET /api/v1/chat/credit``: the balance."""
        if not self._service.check_key(request.headers.get("authorization")):
            return envelope(401, _UNAUTHORISED)
        # Fractional balances stay fractional: 99.5 must not read as 99.
        return success(credit_number(self._service.credits))

    async def _submit(self, request: Request, op: Operation | None, *, market: bool) -> Response:
        self._service.stats.submit_requests += 1

        async def handle() -> Response:
            if not self._service.check_key(request.headers.get("authorization")):
                return envelope(401, _UNAUTHORISED)
            body = await json_body(request)
            parsed = _parse_market(body) if market else _parse_recraft(body, op)
            if isinstance(parsed, str):
                return envelope(422, parsed)
            operation, image_url, scale, fmt, callback = parsed
            refusal = self._service.admit(operation)
            if refusal is not None:
                code, retry_after = refusal
                if retry_after is not None:
                    return rate_limited(retry_after)
                return envelope(code, "insufficient credits")
            task = self._service.create_task(
                operation,
                dialect="market" if market else "recraft",
                image_url=image_url,
                scale=scale,
                format=fmt,
                callback_url=callback,
                base_url=base_of(request),
                params=body,
            )
            return success({"taskId": task.task_id})

        return await self._guard(request, Target.SUBMIT, handle)

    async def _read(self, request: Request, op: Operation | None, *, market: bool) -> Response:
        # get-task-detail's documented answers, the same for the seed's record-info.
        if not self._service.check_key(request.headers.get("authorization")):
            return await self._guard(request, Target.STATUS, _read_unauthorised)
        # Counted as the read arrives, and refused before it reaches any fault.
        retry_after = self._service.admit_read()
        if retry_after is not None:
            return await self._guard.refuse(rate_limited(retry_after))

        async def handle() -> Response:
            task_id = request.query_params.get("taskId")
            if not task_id:
                return envelope(400, "taskId parameter is required")
            task = self._service.read_task(task_id, op)
            if task is None:
                return envelope(404, "Task not found")
            if isinstance(task, NotReady):
                return not_ready(task.status)
            await self._service.settle(task)
            record = task.record(
                self._service.clock.wall(),
                base_of(request),
                market=market,
                objects=self._service.json_objects,
            )
            replayed = self._service.replayed(task, record) if market else None
            if replayed is not None:
                return JSONResponse(replayed[1], status_code=replayed[0])
            return success(record)

        return await self._guard(request, Target.STATUS, handle)


async def _read_unauthorised() -> Response:
    return envelope(401, _READ_UNAUTHORISED)


async def _http_error(_request: Request, exc: Exception) -> Response:
    """Unknown routes and wrong methods, in KIE's envelope rather than starlette's text."""
    assert isinstance(exc, HTTPException)  # noqa: S101 - registered for HTTPException only
    return JSONResponse(
        {"code": exc.status_code, "msg": exc.detail},
        status_code=exc.status_code,
        headers=exc.headers,
    )


_Parsed = tuple[Operation, str, int, str, "str | None"]


def _parse_recraft(body: object, op: Operation | None) -> _Parsed | str:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    assert op is not None  # noqa: S101 - the route fixes the operation
    if op is Operation.UPSCALE:
        scale, fmt = body.get("scale", 2), body.get("format", "PNG")
        if scale not in (2, 4) or isinstance(scale, bool):
            return "scale must be 2 or 4"
        if not isinstance(fmt, str) or fmt.upper() not in _UPSCALE_FORMATS:
            return "format must be PNG or JPG"
        fmt = _UPSCALE_FORMATS[fmt.upper()]
    else:
        scale, fmt = 1, body.get("output_format", "PNG")
        if not isinstance(fmt, str) or fmt.upper() != "PNG":
            return "output_format must be PNG"
        fmt = "PNG"
    return _common(op, body.get("image_url"), int(scale), fmt, body.get("callBackUrl"), "image_url")


def _parse_market(body: object) -> _Parsed | str:
    if not isinstance(body, dict):
        return "request body must be a JSON object"
    op = MARKET_MODELS.get(str(body.get("model")))
    if op is None:
        return f"model must be one of {', '.join(MARKET_MODELS)}"
    given = body.get("input")
    if not isinstance(given, dict):
        return "input must be an object"
    extra = sorted(set(given) - {"image"})
    if extra:
        # Both model pages document input.image alone: no scale, no output format.
        return f"{body['model']} takes only input.image; unknown: {', '.join(map(str, extra))}"
    # The page gives no factor; the emulator's crisp upscale doubles the sides.
    scale = 2 if op is Operation.UPSCALE else 1
    return _common(op, given.get("image"), scale, "PNG", body.get("callBackUrl"), "input.image")


def _common(
    op: Operation, image: object, scale: int, fmt: str, callback: object, field: str
) -> _Parsed | str:
    if not isinstance(image, str) or not image.strip():
        return f"{field} is required"
    if callback is not None and not (
        isinstance(callback, str) and callback.startswith(("http://", "https://"))
    ):
        return "callBackUrl must be an http(s) URL"
    return op, image.strip(), scale, fmt, callback or None


def build_app(service: KieService) -> Starlette:
    """The ASGI application serving ``service``: KIE's endpoints and the side door."""
    guard = FaultGuard(service)
    routes = (
        ApiRoutes(service, guard).routes()
        + UploadRoutes(service, guard).routes()
        + ResultRoutes(service, guard).routes()
        + ControlRoutes(service).routes()
    )
    return Starlette(routes=routes, exception_handlers={HTTPException: _http_error})
