# ruff: noqa: INP001 - a script beside the package, not a module of it
"""A FastAPI app: one client for the app's life, callbacks as wake-ups, a graceful exit.

    pip install . fastapi uvicorn         # in a clone of recraft-async
    KIE_API_KEY=... PUBLIC_URL=https://my.app uvicorn fastapi_app:app --app-dir examples

``POST /upscale`` with ``{"image_url": ...}`` waits for the upscale and answers the
result's ``to_dict()``. ``POST /jobs`` starts one in the background and answers 202 with
an id; ``GET /jobs/{id}`` answers that job's ``to_dict()`` (its status, events, and its
result or error once it ends). With ``PUBLIC_URL`` set, KIE calls ``POST /kie-callback``
when a task ends and its job learns of it at once; the status reads are then only a
safety net, every ``CALLBACK_POLL_SECONDS`` (default 60). ``KIE_WEBHOOK_KEY`` makes the
app check the callbacks' signatures; ``KIE_BASE_URL`` points it elsewhere (an emulator).

At most ``MAX_IN_FLIGHT`` tasks (default 32) run at once and ``MAX_QUEUED`` jobs (default
100) wait for their turn: past it ``POST /jobs`` answers 503 and ``POST /upscale`` waits
for room. When the server is told to stop (Ctrl-C, SIGTERM), the client's shutdown begins
at once, not once uvicorn has drained the open requests: jobs not yet submitted are
cancelled unpaid (their requests answer 503), submitted ones are read at once and get
``SHUTDOWN_GRACE`` seconds (default 25), and those still running then are stopped, their
requests answered 503 with the task id, and their task ids logged for ``client.resume``.
Keep ``SHUTDOWN_GRACE`` under uvicorn's ``--timeout-graceful-shutdown`` and gunicorn's
``--graceful-timeout`` (30 s by default), which cancel the requests still open.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
from collections.abc import AsyncIterator
from typing import Any

from fastapi import FastAPI, HTTPException, Request, Response
from pydantic import BaseModel

import recraft_async as ra

# uvicorn's own logger, so that these lines show in the server's log as they are.
log = logging.getLogger("uvicorn.error")

PUBLIC_URL = os.environ.get("PUBLIC_URL")  # where KIE can reach this app, if anywhere
CALLBACK_URL = f"{PUBLIC_URL.rstrip('/')}/kie-callback" if PUBLIC_URL else None
CALLBACK_POLL_SECONDS = float(os.environ.get("CALLBACK_POLL_SECONDS", "60"))
MAX_IN_FLIGHT = int(os.environ.get("MAX_IN_FLIGHT", "32"))
MAX_QUEUED = int(os.environ.get("MAX_QUEUED", "100"))
SHUTDOWN_GRACE = float(os.environ.get("SHUTDOWN_GRACE", "25"))


@contextlib.asynccontextmanager
async def lifespan(app: FastAPI) -> AsyncIterator[None]:
    """One client for the app's life (its limits hold across all requests), shut down gently."""
    async with ra.AsyncRecraft(max_in_flight=MAX_IN_FLIGHT, max_queued=MAX_QUEUED) as client:
        # uvicorn runs the code after ``yield`` only once the open requests have ended;
        # the client's shutdown must begin at the signal itself, or the jobs those
        # requests await go on (queued ones submitted and paid) while they drain.
        async with ra.shutdown_on_signals(client, grace=SHUTDOWN_GRACE):
            # With callbacks, a job is woken by its task's callback: poll only as a safety
            # net, on a fixed schedule. The view shares the client's pacing, pool and queue.
            app.state.client = (
                client.with_options(
                    poll=ra.PollPolicy(
                        initial=CALLBACK_POLL_SECONDS,
                        max_interval=CALLBACK_POLL_SECONDS,
                        adaptive=False,
                    )
                )
                if CALLBACK_URL
                else client
            )
            app.state.jobs = {}  # id -> Job; a real app would expire finished ones
            yield
        # After a signal this waits for the shutdown it began; else (a test's lifespan
        # manager, say) it is the shutdown.
        await client.shutdown(grace=SHUTDOWN_GRACE)
        log.info("graceful shutdown: the client is closed")


app = FastAPI(title="recraft-async example", lifespan=lifespan)


class UpscaleRequest(BaseModel):
    """The body of ``POST /upscale`` and ``POST /jobs``."""

    image_url: str


def _client(request: Request) -> ra.AsyncRecraft:
    client: ra.AsyncRecraft = request.app.state.client
    return client


@app.post("/upscale")
async def upscale(payload: UpscaleRequest, request: Request) -> dict[str, Any]:
    """Upscale one image and answer its result; waits for room in the queue first."""
    client = _client(request)
    try:
        job = await client.enqueue_upscale(payload.image_url, callback_url=CALLBACK_URL)
    except ra.InvalidInputError as exc:  # checked before anything is sent
        raise HTTPException(422, str(exc)) from None
    except ra.ClientNotOpenError:  # the server is shutting down
        raise HTTPException(503, "shutting down") from None
    try:
        result = await job
    except ra.JobCancelledError as exc:  # the server is shutting down
        # With a task id the task goes on at KIE: the caller can come back for it.
        raise HTTPException(503, {"error": str(exc), "task_id": job.task_id}) from None
    except ra.RecraftError as exc:
        # The task id, when there is one, lets the caller come back for the result.
        raise HTTPException(502, {"error": str(exc), "task_id": job.task_id}) from None
    return result.to_dict()


@app.post("/jobs", status_code=202)
async def start_job(payload: UpscaleRequest, request: Request) -> dict[str, Any]:
    """Start an upscale in the background; answer its id and where it stands."""
    client = _client(request)
    try:
        job = client.upscale(payload.image_url, callback_url=CALLBACK_URL)
    except ra.InvalidInputError as exc:
        raise HTTPException(422, str(exc)) from None
    except ra.QueueFullError:  # MAX_QUEUED jobs wait already: the caller comes back later
        raise HTTPException(503, "too many jobs waiting", headers={"Retry-After": "10"}) from None
    except ra.ClientNotOpenError:
        raise HTTPException(503, "shutting down") from None
    job_id = uuid.uuid4().hex
    request.app.state.jobs[job_id] = job
    return {"id": job_id, "job": job.to_dict()}


@app.get("/jobs/{job_id}")
async def get_job(job_id: str, request: Request) -> dict[str, Any]:
    """Where a background job stands: its status and events, then its result or error."""
    job: ra.Job | None = request.app.state.jobs.get(job_id)
    if job is None:
        raise HTTPException(404, "no such job")
    return job.to_dict()


@app.post("/kie-callback", status_code=204)
async def kie_callback(request: Request) -> Response:
    """Wake the job of the task that ended; its status read stays the truth.

    A callback for a task this app does not hold is acknowledged and ignored. Unsigned,
    forged, stale and replayed callbacks are refused when ``KIE_WEBHOOK_KEY`` is set.
    """
    client = _client(request)
    try:
        client.handle_callback(await request.body(), request.headers)
    except (ra.WebhookVerificationError, ra.ProtocolError):
        return Response(status_code=400)
    except ra.ClientNotOpenError:  # shutting down: KIE retries, a later resume reads it
        return Response(status_code=503)
    return Response(status_code=204)


if __name__ == "__main__":
    import uvicorn

    uvicorn.run(app, host="127.0.0.1", port=int(os.environ.get("PORT", "8000")))
