"""The one wording of "this needs an extra", with the line that installs it.

The package is not on PyPI yet: ``pip install 'recraft-async[x]'`` would look it up there
and fail, so the message gives the command that works in a clone (README, Install).
"""

from __future__ import annotations

EMULATOR_PACKAGES = "Pillow, starlette, python-multipart, uvicorn"


def needs_extra(what: str, extra: str, brings: str) -> str:
    """``what`` needs ``extra`` (which ``brings`` these packages), and how to install it."""
    return (
        f"{what} needs the package's {extra!r} extra ({brings}): in a clone of"
        f" recraft-async, pip install '.[{extra}]'; with a wheel, add [{extra}] after its"
        " file name"
    )
