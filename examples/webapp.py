# ruff: noqa: INP001 - a script beside the package, not a module of it
"""A small web app: upscale on request, and take KIE's callbacks as hints.

    pip install '.[emulator]'             # in a clone: starlette and uvicorn
    KIE_API_KEY=... PUBLIC_URL=https://my.app uvicorn webapp:app --app-dir examples

``POST /upscale`` with ``{"image_url": ...}`` answers the result URL once the
task is done. With ``PUBLIC_URL`` set, KIE calls ``POST /kie-callback`` when a task ends
and the waiting request learns of it at once instead of at its next status read;
``KIE_WEBHOOK_KEY`` makes the app check the callbacks' signatures.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

import recraft_async as ra


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    """One client for the app's lifetime: its limits hold across all requests."""
    async with ra.AsyncRecraft() as client:
        app.state.client = client
        yield


async def upscale(request: Request) -> Response:
    """Upscale one image and answer its result URL."""
    client: ra.AsyncRecraft = request.app.state.client
    payload = await request.json()
    public = os.environ.get("PUBLIC_URL")
    callback = f"{public.rstrip('/')}/kie-callback" if public else None
    try:
        job = client.upscale(payload.get("image_url"), callback_url=callback)
    except ra.InvalidInputError as exc:
        return JSONResponse({"error": str(exc)}, status_code=422)
    try:
        result = await job
    except ra.RecraftError as exc:
        # The task id, when there is one, lets the caller come back for the result.
        return JSONResponse({"error": str(exc), "task_id": job.task_id}, status_code=502)
    return JSONResponse({"task_id": result.task_id, "url": result.url})


async def kie_callback(request: Request) -> Response:
    """Wake the request waiting on this task; the status read stays the truth.

    A callback for a task this app does not hold is acknowledged and ignored (nothing is
    read). Unsigned, forged, stale and replayed callbacks are refused when
    ``KIE_WEBHOOK_KEY`` is set (``WebhookReplayError`` is a ``WebhookVerificationError``).
    """
    client: ra.AsyncRecraft = request.app.state.client
    try:
        client.handle_callback(await request.body(), request.headers)
    except (ra.WebhookVerificationError, ra.ProtocolError):
        return Response(status_code=400)
    return Response(status_code=204)


app = Starlette(
    routes=[
        Route("/upscale", upscale, methods=["POST"]),
        Route("/kie-callback", kie_callback, methods=["POST"]),
    ],
    lifespan=lifespan,
)
