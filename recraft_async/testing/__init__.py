"""A faithful KIE emulator for offline tests: in-process (ASGI) or on a loopback port.

    from recraft_async.testing import KieEmulator, sample_images, serve

    emulator = KieEmulator(time_scale=0.001)          # tasks take ~20 ms instead of ~20 s
    url = emulator.add_image(*sample_images()[0])     # an image URL the emulator serves
    async with serve(emulator) as base_url:           # http://127.0.0.1:<port>
        async with AsyncRecraft(api_key=emulator.api_key, base_url=base_url,
                                upload_base_url=base_url,
                                submit_rate=emulator.rate,
                                read_rate=emulator.read_rate) as client:
            result = await client.upscale(url)
    assert emulator.stats.submits[("upscale", url)] == 1

In-process, without a socket: ``emulator.http_client()`` (an httpx client over
``httpx.ASGITransport(app=emulator.app)``); run ``async with emulator:`` for callbacks.
``emulator.service`` is the emulated account without HTTP (``tasks``, ``files``, the
rules the routes apply), for tests that inspect it directly.

Endpoints: ``POST /api/v1/jobs/createTask`` and ``GET /api/v1/jobs/recordInfo?taskId=``
(the market dialect, KIE's documented one: ``input.image`` only, task ids like
``task_recraft_1765177373893042``); ``POST /api/v1/recraft/{upscale,remove-background}``
and their ``/record-info?taskId=`` (the seed's dialect); ``GET /api/v1/chat/credit``;
``POST /api/file-{stream,base64,url}-upload`` (``uploadPath`` required). Answers, errors
included, are KIE's documented bodies; unknown routes answer ``{"code": 404, ...}``. The
side door, no key needed: ``/_emulator/{files,results,images}/...``,
``GET /_emulator/stats``, ``GET /_emulator/tasks`` (exact finish times) and
``POST /_emulator/faults``.

Knobs (``KieEmulator`` keywords): ``rate`` (submits, default 20 per 10 s) and
``read_rate`` (status reads, default 10 per second), sliding windows answering HTTP 429
``Rate limit exceeded``, counted in ``stats.rate_limited`` and ``stats.read_rate_limited``;
``prices`` (credits per operation, default 0.5 upscale, 1 background removal);
``credits``; ``callback_shape`` (``"both"``, ``"market"`` or ``"verification"``: which
documented callback body to send); ``webhook_key``; ``duration``, ``time_scale`` and
``latency``; ``faults`` and ``seed``.

Faults (``emulator.faults``): ``next(target, *faults)`` scripts the next events,
``chance(target, fault, p)`` adds noise; targets ``submit``, ``status``, ``upload``,
``task``, ``callback``. See ``Fault`` for the kinds, and ``processed=True`` for
"the request landed, only the answer was lost".

Also: ``python -m recraft_async.testing --help`` (a separate process, for benchmarks) and
the pytest fixtures ``kie_emulator``, ``kie_server``, ``kie_client``.
Needs the ``emulator`` extra (Pillow, starlette, python-multipart, uvicorn).
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._duration import Duration
    from ._emulator import KieEmulator
    from ._faults import Fault, FaultKind, FaultPlan, Target
    from ._images import sample_images
    from ._server import serve
    from ._stats import EmulatorStats
    from ._tasks import TaskInfo

# Loaded on first use, so that importing the pytest plugin (a submodule, which imports
# this package first) never needs the optional dependencies.
_HOMES = {
    "Duration": ("._duration", "Duration"),
    "EmulatorStats": ("._stats", "EmulatorStats"),
    "Fault": ("._faults", "Fault"),
    "FaultKind": ("._faults", "FaultKind"),
    "FaultPlan": ("._faults", "FaultPlan"),
    "KieEmulator": ("._emulator", "KieEmulator"),
    "Target": ("._faults", "Target"),
    "TaskInfo": ("._tasks", "TaskInfo"),
    "sample_images": ("._images", "sample_images"),
    "serve": ("._server", "serve"),
}


def __getattr__(name: str) -> Any:
    try:
        module, attribute = _HOMES[name]
    except KeyError:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}") from None
    value = getattr(importlib.import_module(module, __name__), attribute)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted([*globals(), *__all__])


__all__ = [
    "Duration",
    "EmulatorStats",
    "Fault",
    "FaultKind",
    "FaultPlan",
    "KieEmulator",
    "Target",
    "TaskInfo",
    "sample_images",
    "serve",
]
