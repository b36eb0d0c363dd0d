"""Per-job options: what a view made by ``with_options`` changes for the jobs it makes."""

from __future__ import annotations

from typing import TYPE_CHECKING

import attrs

from ._policy import PollPolicy

if TYPE_CHECKING:
    from ._transport import Transport


@attrs.frozen
class JobOptions:
    """A job's own poll policy, retries and transport (its per-attempt timeout)."""

    poll: PollPolicy
    max_retries: int
    transport: Transport
