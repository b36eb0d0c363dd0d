"""The upload endpoints (stream, base64, URL), answering ``downloadUrl``s the emulator serves.

Their errors are the file-upload pages' documented bodies (``success``, ``code``, ``msg``;
no ``data``), with HTTP 200 like the rest of the service.
"""

from __future__ import annotations

import base64
import binascii
import datetime as dt
import re
import uuid
from typing import TYPE_CHECKING, Any

from starlette.datastructures import UploadFile
from starlette.responses import JSONResponse
from starlette.routing import Route

from ._faults import Target
from ._http import base_of, json_body
from ._images import sniff_mime
from ._service import KieService, file_url

if TYPE_CHECKING:
    from starlette.requests import Request
    from starlette.responses import Response

    from ._http import FaultGuard

_UNSAFE = re.compile(r"[^A-Za-z0-9._-]+")
_EXTENSIONS = {"image/png": ".png", "image/jpeg": ".jpg", "image/webp": ".webp"}
_STORE_PREFIX = "uploads/"
_NO_PATH = "Missing required parameter: uploadPath"
_BAD_BASE64 = "Base64 decoding failed: Invalid Base64 format"
_UNAUTHORISED = "Authentication failed: Invalid API Key"


def safe_key(upload_path: object, file_name: object, data: bytes) -> tuple[str, str]:
    """(store key, file name) with every path part sanitised: no ``..``, no absolute paths."""
    folders = [
        _UNSAFE.sub("_", part).strip(".")
        for part in re.split(r"[\\/]+", upload_path if isinstance(upload_path, str) else "")
    ]
    raw_name = re.split(r"[\\/]", file_name)[-1] if isinstance(file_name, str) else ""
    name = _UNSAFE.sub("_", raw_name).strip(".")
    if not name:
        name = uuid.uuid4().hex + _EXTENSIONS.get(sniff_mime(data), "")
    return _STORE_PREFIX + "/".join([*[f for f in folders if f], name]), name


def _timestamp(moment: dt.datetime) -> str:
    """The documented form, milliseconds and a Z: ``2025-01-01T12:00:00.000Z``."""
    return moment.strftime("%Y-%m-%dT%H:%M:%S.") + f"{moment.microsecond // 1000:03d}Z"


def _answer(code: int, msg: str, data: dict[str, Any] | None = None) -> JSONResponse:
    body: dict[str, Any] = {"success": code == 200, "code": code, "msg": msg}
    if data is not None:
        body["data"] = data
    return JSONResponse(body)


def _has_path(upload_path: object) -> bool:
    return isinstance(upload_path, str) and bool(upload_path.strip())


class UploadRoutes:
    """``/api/file-stream-upload``, ``/api/file-base64-upload``, ``/api/file-url-upload``."""

    def __init__(self, service: KieService, guard: FaultGuard) -> None:
        self._service = service
        self._guard = guard

    def routes(self) -> list[Route]:
        """Starlette routes for the upload endpoints."""
        return [
            Route("/api/file-stream-upload", self.stream, methods=["POST"]),
            Route("/api/file-base64-upload", self.base64, methods=["POST"]),
            Route("/api/file-url-upload", self.url, methods=["POST"]),
        ]

    async def stream(self, request: Request) -> Response:
        """Multipart upload: ``file``, ``uploadPath``, ``fileName``."""

        async def handle() -> Response:
            form = await request.form()
            if not _has_path(form.get("uploadPath")):
                return _answer(400, _NO_PATH)
            file = form.get("file")
            if not isinstance(file, UploadFile):
                return _answer(400, "Missing required parameter: file")
            data = await file.read()
            name = form.get("fileName") or file.filename
            return self._store(request, data, form.get("uploadPath"), name)

        return await self._authorised(request, handle)

    async def base64(self, request: Request) -> Response:
        """JSON upload: ``base64Data`` (a ``data:`` URL too), ``uploadPath``, ``fileName``."""

        async def handle() -> Response:
            body = await json_body(request)
            if not isinstance(body, dict) or not _has_path(body.get("uploadPath")):
                return _answer(400, _NO_PATH)
            if not isinstance(body.get("base64Data"), str):
                return _answer(400, "Missing required parameter: base64Data")
            encoded = body["base64Data"]
            if encoded.startswith("data:"):
                encoded = encoded.partition(",")[2]
            try:
                data = base64.b64decode(encoded, validate=True)
            except (binascii.Error, ValueError):
                return _answer(400, _BAD_BASE64)
            return self._store(request, data, body.get("uploadPath"), body.get("fileName"))

        return await self._authorised(request, handle)

    async def url(self, request: Request) -> Response:
        """Upload from a URL: only the emulator's own files, it never goes outside."""

        async def handle() -> Response:
            body = await json_body(request)
            if not isinstance(body, dict) or not _has_path(body.get("uploadPath")):
                return _answer(400, _NO_PATH)
            if not isinstance(body.get("fileUrl"), str):
                return _answer(400, "Missing required parameter: fileUrl")
            key = self._service.resolve(body["fileUrl"])
            data = self._service.file(key) if key is not None else None
            if data is None:
                return _answer(400, f"cannot download fileUrl: {body['fileUrl']}")
            name = body.get("fileName") or key.rpartition("/")[2] if key else None
            return self._store(request, data, body.get("uploadPath"), name)

        return await self._authorised(request, handle)

    async def _authorised(self, request: Request, handle: Any) -> Response:
        async def checked() -> Response:
            if not self._service.check_key(request.headers.get("authorization")):
                return _answer(401, _UNAUTHORISED)
            response: Response = await handle()
            return response

        return await self._guard(request, Target.UPLOAD, checked)

    def _store(
        self, request: Request, data: bytes, upload_path: object, file_name: object
    ) -> JSONResponse:
        key, name = safe_key(upload_path, file_name, data)
        self._service.store(key, data)
        self._service.stats.uploads += 1
        return _answer(
            200,
            "File uploaded successfully",
            {
                "fileName": name,
                # As documented: uploadPath/fileName (our store keeps uploads apart).
                "filePath": key.removeprefix(_STORE_PREFIX),
                "downloadUrl": file_url(base_of(request), key),
                "fileSize": len(data),
                "mimeType": sniff_mime(data),
                "uploadedAt": _timestamp(
                    dt.datetime.fromtimestamp(self._service.clock.wall(), dt.timezone.utc)
                ),
            },
        )
