"""Type-checked in CI (``mypy tests/typecheck``), never run.

Each ``type: ignore`` below must be needed: mypy's strict mode reports an unused one, so
loosening an operation's or a dialect's ``Literal`` type to ``str``, or letting the
constructor take its arguments by position again, fails CI.
"""

from __future__ import annotations

import recraft_async as ra


async def impossible_names(client: ra.AsyncRecraft) -> None:
    """A misspelt operation or dialect is a type error, not a run-time surprise."""
    client.resume("t", "upscal")  # type: ignore[arg-type]
    await client.get_task("t", "remove_background")  # type: ignore[arg-type]
    ra.AsyncRecraft(dialect="markt")  # type: ignore[arg-type]


def positional_arguments() -> None:
    """The constructor takes keywords only."""
    ra.AsyncRecraft("k")  # type: ignore[call-arg]


async def possible_names(client: ra.AsyncRecraft) -> None:
    """An Operation, or its value as a string, type-checks."""
    client.resume("t", "upscale")
    client.resume("t", ra.Operation.REMOVE_BACKGROUND)
    await client.get_task("t", "remove-background")
    ra.AsyncRecraft(api_key="k", dialect="market")
