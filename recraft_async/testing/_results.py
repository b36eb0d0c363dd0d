"""The result host and KIE's download links: results, fresh links to them, and their expiry.

``POST /api/v1/common/download-url`` answers as KIE documents it: ``data`` is a temporary
link (valid ``download_link_lifetime`` seconds, 20 minutes by default) to a file this
account made, and any other URL answers code 422. The result host refuses with 403 a
result URL older than ``result_url_lifetime`` and an expired link, as storage refuses an
expired signed link; ``Target.RESULT`` faults strike its answers.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from starlette.responses import PlainTextResponse, Response
from starlette.routing import Route

from ._faults import Target
from ._http import base_of, envelope, json_body, success
from ._images import sniff_mime
from ._service import FILES_PREFIX, LINKS_PREFIX
from ._tasks import RESULTS_PREFIX

if TYPE_CHECKING:
    from starlette.requests import Request

    from ._http import FaultGuard
    from ._service import KieService

DOWNLOAD_URL_PATH = "/api/v1/common/download-url"
_UNAUTHORISED = "You do not have access permissions"
# The page documents code 422 for an external URL, not its message: ours says why.
_FOREIGN_URL = "external url: download links are made for files KIE generated only"


class ResultRoutes:
    """Results, download links, and the endpoint that makes the links."""

    def __init__(self, service: KieService, guard: FaultGuard) -> None:
        self._service = service
        self._guard = guard

    def routes(self) -> list[Route]:
        """Starlette routes for the result host and the download-url endpoint."""
        return [
            Route(RESULTS_PREFIX + "{name}", self.result, methods=["GET"]),
            Route(LINKS_PREFIX + "{token}", self.link, methods=["GET"]),
            Route(DOWNLOAD_URL_PATH, self.download_url, methods=["POST"]),
        ]

    async def download_url(self, request: Request) -> Response:
        """``POST /api/v1/common/download-url``: a fresh link to a file this account made."""

        async def handle() -> Response:
            if not self._service.check_key(request.headers.get("authorization")):
                return envelope(401, _UNAUTHORISED)
            body = await json_body(request)
            url = body.get("url") if isinstance(body, dict) else None
            if not isinstance(url, str) or not url.strip():
                return envelope(422, "url is required")
            token = self._service.issue_link(url.strip())
            if token is None:
                return envelope(422, _FOREIGN_URL)
            return success(f"{base_of(request)}{LINKS_PREFIX}{token}")

        return await self._guard(request, Target.LINK, handle)

    async def result(self, request: Request) -> Response:
        """A task's result, rendered on first demand; refused once its URL has expired."""
        name: str = request.path_params["name"]

        async def handle() -> Response:
            task = self._service.task(name.rpartition(".")[0])
            if task is not None and self._service.result_expired(task):
                return self._refused()
            return await self._serve(RESULTS_PREFIX + name)

        return await self._guard(request, Target.RESULT, handle, latency=False)

    async def link(self, request: Request) -> Response:
        """A download link: the file it stands for, until it expires."""
        found = self._service.link_target(request.path_params["token"])

        async def handle() -> Response:
            if found is None:
                return PlainTextResponse("not found", status_code=404)
            path, expired = found
            return self._refused() if expired else await self._serve(path)

        return await self._guard(request, Target.RESULT, handle, latency=False)

    def _refused(self) -> Response:
        self._service.stats.downloads_refused += 1
        return PlainTextResponse("link expired", status_code=403)

    async def _serve(self, path: str) -> Response:
        data: bytes | None = None
        if path.startswith(RESULTS_PREFIX):
            name = path[len(RESULTS_PREFIX) :]
            task = self._service.task(name.rpartition(".")[0])
            if task is not None and task.result_name == name:
                data = await self._service.render(task)
        elif path.startswith(FILES_PREFIX):
            data = self._service.file(path[len(FILES_PREFIX) :])
        if data is None:
            return PlainTextResponse("not found", status_code=404)
        self._service.stats.downloads += 1
        return Response(data, media_type=sniff_mime(data))
