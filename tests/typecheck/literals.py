"""Type-checked in CI (``mypy tests/typecheck``), never run.

Each ``type: ignore`` below must be needed: mypy's strict mode reports an unused one, so
loosening an option's ``Literal`` type to ``int`` or ``str`` fails CI.
"""

from __future__ import annotations

import recraft_async as ra


def impossible_options(client: ra.AsyncRecraft) -> None:
    """Values the service cannot take are type errors, not run-time surprises."""
    client.upscale("https://i.test/a.png", scale=3)  # type: ignore[arg-type]
    client.upscale("https://i.test/a.png", format="webp")  # type: ignore[arg-type]
    client.remove_background("https://i.test/a.png", output_format="jpg")  # type: ignore[arg-type]
    ra.AsyncRecraft(api_key="k", dialect="seed")  # type: ignore[arg-type]


def possible_options(client: ra.AsyncRecraft) -> None:
    """What the seed's dialect takes type-checks."""
    client.upscale("https://i.test/a.png", scale=4, format="jpg")
    client.remove_background("https://i.test/a.png", output_format="png")
    ra.AsyncRecraft(api_key="k", dialect="recraft")
