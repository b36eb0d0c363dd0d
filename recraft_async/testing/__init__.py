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

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from ._callbacks import sign as webhook_signature
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
    "webhook_signature": ("._callbacks", "sign"),
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
    "webhook_signature",
]
