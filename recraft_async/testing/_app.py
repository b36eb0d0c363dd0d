"""The service's endpoints: both dialects' submits and status reads, and the balance."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from starlette.applications import Starlette
from starlette.routing import Route

from recraft_async._models import Operation

from ._control import ControlRoutes
from ._faults import Target
from ._http import FaultGuard, base_of, envelope, json_body, retry_after_headers
from ._tasks import MARKET_MODELS
from ._uploads import UploadRoutes

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response

    from ._emulator import KieEmulator

_UPSCALE_FORMATS = {"PNG": "PNG", "JPG": "JPG", "JPEG": "JPG"}


class ApiRoutes:
    """The service's endpoints: both dialects' submits and reads, and the balance."""

    def __init__(self, emulator: KieEmulator, guard: FaultGuard) -> None:
        self._emu = emulator
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
        if not self._emu._check_key(request.headers.get("authorization")):
            return _unauthorised()
        balance = self._emu.credits
        return envelope(200, "success", int(balance) if balance.is_integer() else balance)

    async def _submit(self, request: Request, op: Operation | None, *, market: bool) -> Response:
        self._emu.stats.submit_requests += 1

        async def handle() -> Response:
            if not self._emu._check_key(request.headers.get("authorization")):
                return _unauthorised()
            body = await json_body(request)
            parsed = _parse_market(body) if market else _parse_recraft(body, op)
            if isinstance(parsed, str):
                return envelope(422, parsed)
            operation, image_url, scale, fmt, callback = parsed
            refusal = self._emu._admit(operation, scale)
            if refusal is not None:
                return _refuse(*refusal)
            task = self._emu._create_task(
                operation,
                dialect="market" if market else "recraft",
                image_url=image_url,
                scale=scale,
                format=fmt,
                callback_url=callback,
                base_url=base_of(request),
                params=body,
            )
            return envelope(200, "success", {"taskId": task.task_id})

        return await self._guard(request, Target.SUBMIT, handle)

    async def _read(self, request: Request, op: Operation | None, *, market: bool) -> Response:
        async def handle() -> Response:
            if not self._emu._check_key(request.headers.get("authorization")):
                return _unauthorised()
            task_id = request.query_params.get("taskId")
            if not task_id:
                return envelope(422, "taskId is required")
            task = self._emu._read_task(task_id, op)
            if task is None:
                return envelope(404, f"task not found: {task_id}")
            await self._emu._settle(task)
            record = task.record(time.time(), base_of(request), market=market)
            return envelope(200, "success", record)

        return await self._guard(request, Target.STATUS, handle)


def _unauthorised() -> JSONResponse:
    return envelope(401, "You do not have access permissions")


def _refuse(code: int, msg: str, retry_after: float | None) -> JSONResponse:
    if code != 429 or retry_after is None:
        return envelope(code, msg)
    response = envelope(429, msg, status=429)
    response.headers.update(retry_after_headers(retry_after))
    return response


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
    scale = 1
    if op is Operation.UPSCALE:
        scale = given.get("scale", 2)
        if scale not in (2, 4) or isinstance(scale, bool):
            return "input.scale must be 2 or 4"
    return _common(
        op, given.get("image"), int(scale), "PNG", body.get("callBackUrl"), "input.image"
    )


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


def build_app(emulator: KieEmulator) -> Starlette:
    """The emulator's ASGI application."""
    guard = FaultGuard(emulator)
    routes = (
        ApiRoutes(emulator, guard).routes()
        + UploadRoutes(emulator, guard).routes()
        + ControlRoutes(emulator).routes()
    )
    return Starlette(routes=routes)
