"""What the fleet trusts Redis to remember, and this worker's own memory for when it forgets.

A claim's ``task:<id>`` stays in Redis for ``remember`` seconds: it is what stops a second
worker given the same input from paying again. A Redis that keeps its data only in memory
(neither AOF nor RDB snapshots) forgets every claim when it restarts. So at open the fleet
asks Redis how it persists and refuses a volatile one unless told to accept it; and each
worker keeps the inputs it submitted itself, asked once it has seen Redis restart.
"""

from __future__ import annotations

from typing import Any

import anyio
import coredis
from coredis.exceptions import ResponseError

from recraft_async._core._errors import CoordinationNotDurableError

# What a volatile Redis can cost, in the words every refusal and warning uses.
AT_STAKE = (
    "after a Redis restart the fleet forgets which inputs were submitted, and an input"
    " given to another worker may be paid twice"
)


async def persistence(redis: coredis.Redis[str]) -> str | None:
    """How Redis keeps its data across a restart (``"AOF"``, ``"RDB snapshots"``), or None.

    ``CONFIG GET`` first; where it is refused (managed services rename or forbid it),
    ``INFO persistence``, which shows whether AOF is on but not whether snapshots are
    scheduled: there, without AOF, the answer is None (not provably persistent).
    """
    try:
        # One parameter per CONFIG GET: Redis before 7 takes no more.
        config = {**await redis.config_get(["appendonly"]), **await redis.config_get(["save"])}
    except ResponseError:
        info = await redis.info("persistence")
        return "AOF" if str(info.get("aof_enabled", "0")) == "1" else None
    if config.get("appendonly") == "yes":
        return "AOF"
    if config.get("save", "").strip():
        return "RDB snapshots"
    return None


async def check_persistence(redis: coredis.Redis[str], *, allow_volatile: bool) -> str | None:
    """The persistence of Redis; ``CoordinationNotDurableError`` when volatile and not allowed."""
    how = await persistence(redis)
    if how is None and not allow_volatile:
        raise CoordinationNotDurableError(
            "Redis keeps the fleet's claims in memory only (no AOF or RDB snapshots that the"
            f" fleet could see): {AT_STAKE}. Run Redis with --appendonly yes --appendfsync"
            " everysec, or pass RedisCoordination(allow_volatile=True) to accept the risk"
        )
    return how


async def run_id(redis: coredis.Redis[str]) -> str:
    """The id of this run of the Redis server: a new one after every restart."""
    info: dict[str, Any] = await redis.info("server")
    return str(info.get("run_id", ""))


class OwnSubmits:
    """The inputs this worker submitted itself: claim key -> the claim's value, for a while.

    The value is what the fleet's claim held once settled (``task:<id>`` or
    ``uncertain:<token>``). Each is kept ``remember`` seconds, as long as Redis keeps it;
    entries expire in the order they were recorded, so the oldest go first.
    """

    def __init__(self, remember: float) -> None:
        self._remember = remember
        self._values: dict[str, tuple[float, str]] = {}

    def __len__(self) -> int:
        return len(self._values)

    def record(self, key: str, value: str) -> None:
        """``key``'s claim now holds ``value``: remember it for ``remember`` seconds."""
        self._expire()
        self._values.pop(key, None)  # re-recorded: to the end, the latest to expire
        self._values[key] = (anyio.current_time() + self._remember, value)

    def forget(self, key: str) -> None:
        """Its task failed: a retry may submit it again."""
        self._values.pop(key, None)

    def get(self, key: str) -> str | None:
        """The value this worker settled ``key``'s claim with, if it still remembers it."""
        self._expire()
        found = self._values.get(key)
        return None if found is None else found[1]

    def _expire(self) -> None:
        now = anyio.current_time()
        while self._values:
            key, (expires, _) = next(iter(self._values.items()))
            if expires > now:
                return
            del self._values[key]
