"""The emulator's own endpoints: stored files, stats, task times, fault scripts."""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import JSONResponse, PlainTextResponse, Response
from starlette.routing import Route

from ._faults import Fault, FaultPlan, Target
from ._http import base_of, json_body
from ._images import sniff_mime
from ._service import FILES_PREFIX, file_url

if TYPE_CHECKING:
    from starlette.requests import Request

    from ._service import KieService


class ControlRoutes:
    """Routes under ``/_emulator/``; no key needed, they are the test's side door."""

    def __init__(self, service: KieService) -> None:
        self._service = service

    def routes(self) -> list[Route]:
        """Starlette routes for the side door."""
        return [
            Route(FILES_PREFIX + "{key:path}", self.file, methods=["GET"]),
            Route("/_emulator/images/{name}", self.add_image, methods=["POST", "PUT"]),
            Route("/_emulator/stats", self.stats, methods=["GET"]),
            Route("/_emulator/tasks", self.tasks, methods=["GET"]),
            Route("/_emulator/faults", self.faults, methods=["POST"]),
        ]

    async def file(self, request: Request) -> Response:
        """A stored image or upload."""
        data = self._service.file(request.path_params["key"])
        if data is None:
            return PlainTextResponse("not found", status_code=404)
        self._service.stats.downloads += 1
        return Response(data, media_type=sniff_mime(data))

    async def add_image(self, request: Request) -> Response:
        """Store the raw body as an image (for an emulator in another process)."""
        key = self._service.store(f"images/{request.path_params['name']}", await request.body())
        return JSONResponse({"url": file_url(base_of(request), key)})

    async def stats(self, _request: Request) -> Response:
        """The counters, the balance and the callbacks still to send."""
        body = self._service.stats.as_json()
        body["credits"] = self._service.credits
        body["callbacks_pending"] = self._service.callbacks_pending
        return JSONResponse(body)

    async def tasks(self, _request: Request) -> Response:
        """Every task's creation and exact finish moment (``time.time()`` seconds)."""
        return JSONResponse({"tasks": [info.as_json() for info in self._service.task_info()]})

    async def faults(self, request: Request) -> Response:
        """Script faults: ``{"target", "next": [spec|null], "chance": [[spec, p]], "clear"}``."""
        body = await json_body(request)
        try:
            target = _apply(self._service.faults, body)
        except (KeyError, TypeError, ValueError) as exc:
            return JSONResponse({"error": str(exc)}, status_code=400)
        return JSONResponse({"ok": True, "pending": self._service.faults.pending(target)})


def _apply(plan: FaultPlan, body: object) -> Target:
    if not isinstance(body, dict):
        raise TypeError("body must be a JSON object")
    target = Target(body["target"])
    if body.get("clear"):
        plan.clear(target)
    plan.next(target, *[None if s is None else Fault.parse(s) for s in body.get("next", [])])
    for spec, probability in body.get("chance", []):
        plan.chance(target, Fault.parse(spec), float(probability))
    return target
