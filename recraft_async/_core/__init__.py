"""The core: values and checks, the wire format and transport, and the engine.

It imports httpx, anyio, attrs, cattrs and the standard library only, and nothing from the
layers above it (``_bulk``, ``_fleet``, ``_doctor``, ``testing``, the facade): the
contracts in pyproject's ``[tool.importlinter]`` hold it to that.
"""
