"""A faithful KIE emulator for offline tests: in-process (ASGI) or on a loopback port.

::

    from recraft_async.testing import KieEmulator, serve

    emulator = KieEmulator(time_scale=0.001)
    url = emulator.add_image("cat.png", png_bytes)
    async with serve(emulator) as base_url:
        ...  # point the client at base_url (both base_url and upload_base_url)

Needs the ``emulator`` extra (Pillow, starlette, uvicorn).
"""

from __future__ import annotations

from ._callbacks import sign as webhook_signature
from ._duration import Duration
from ._emulator import KieEmulator
from ._faults import Fault, FaultKind, FaultPlan, Target
from ._images import sample_images
from ._server import serve
from ._stats import EmulatorStats
from ._tasks import TaskInfo

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
    "webhook_signature",
]
