"""RedisCoordination: the settings of a fleet of clients that share one KIE key through Redis.

Only settings here: coredis is imported when a client opens with them (the ``redis``
extra), never by ``import recraft_async``.
"""

from __future__ import annotations

import re
import urllib.parse
from typing import TYPE_CHECKING, Any

import attrs

from recraft_async._core._errors import InvalidInputError
from recraft_async._core._extras import needs_extra
from recraft_async._core._policy import Rate
from recraft_async._core._validate import boolean_field, positive_field

if TYPE_CHECKING:
    from recraft_async._core._coordination import Coordinator

_NAMESPACE = re.compile(r"[A-Za-z0-9_.:-]{1,100}")
_SCHEMES = ("redis", "rediss", "unix")


def _url_repr(url: str) -> str:
    """The URL without its password: a repr must never show a secret."""
    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return repr(url)
    host = parts.hostname or ""
    netloc = f"{parts.username or ''}:***@{host}" + (f":{parts.port}" if parts.port else "")
    return repr(urllib.parse.urlunsplit(parts._replace(netloc=netloc)))


def _check_url(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or urllib.parse.urlsplit(value).scheme not in _SCHEMES:
        raise InvalidInputError(
            "RedisCoordination url must be a redis://, rediss:// or unix:// URL"
        )


def _check_namespace(_instance: object, _attribute: object, value: Any) -> None:
    if not isinstance(value, str) or not _NAMESPACE.fullmatch(value):
        raise InvalidInputError(
            "RedisCoordination namespace must be 1 to 100 letters, digits or _.:- (one per"
            f" KIE account; never the API key), got {value!r}"
        )


@attrs.frozen
class RedisCoordination:
    """Many clients on one KIE key, in many processes or hosts, behaving as one client.

    Pass it as ``AsyncRecraft(coordination=...)`` in every worker. Through one Redis the
    workers share the submit window and the read budget (sliding windows taken in one
    atomic step), a 429's pause, a claim on each input (the second worker given an image
    polls the first one's task instead of paying again) and the callbacks (any worker's
    ``handle_callback`` wakes the job wherever it lives). Each worker keeps its own
    ``max_in_flight``. Needs the ``redis`` extra (coredis).

    When Redis does not answer, a submit waits at most ``unavailable_timeout`` seconds and
    then fails with ``CoordinationUnavailableError``, unsent: the account's limits are
    never exceeded blindly. Submitted tasks keep being polled, paced by each worker alone.

    Claims live in Redis: run it with persistence (AOF, ``appendfsync everysec``). A
    client refuses to open on a Redis that keeps nothing across a restart unless
    ``allow_volatile=True``.
    """

    url: str = attrs.field(validator=_check_url, repr=_url_repr)
    """``redis://[user:password@]host:port/db``, ``rediss://`` (TLS) or ``unix://path``.

    Its password never shows in a repr.
    """
    namespace: str = attrs.field(kw_only=True, validator=_check_namespace)
    """Names this account's keys in Redis (``recraft:<namespace>:...``).

    One per KIE account, the same in every worker sharing it. Never the API key.
    """
    lease: float = attrs.field(default=30.0, kw_only=True, validator=positive_field)
    """Seconds a dead worker's claim or in-flight slot outlives it.

    A live worker renews its claims every third of it.
    """
    remember: float = attrs.field(default=86_400.0, kw_only=True, validator=positive_field)
    """Seconds a submitted (or uncertain) input stays known to the fleet.

    A worker given it within that time attaches to its task instead of submitting.
    """
    unavailable_timeout: float = attrs.field(default=10.0, kw_only=True, validator=positive_field)
    """Seconds a submit waits for Redis before ``CoordinationUnavailableError``.

    Also the bound on connecting when a client opens.
    """
    command_timeout: float = attrs.field(default=2.0, kw_only=True, validator=positive_field)
    """Seconds after which one Redis command counts as failed."""
    allow_volatile: bool = attrs.field(default=False, kw_only=True, validator=boolean_field)
    """Accept a Redis that keeps nothing across a restart (neither AOF nor RDB snapshots).

    False (the default): a client refuses to open on one, with
    ``CoordinationNotDurableError``: after its restart the fleet forgets which inputs
    were submitted, and an input given to another worker may be paid twice (each worker
    still remembers the inputs it submitted itself). Where Redis refuses ``CONFIG GET``
    (managed services rename it), only AOF, seen in ``INFO persistence``, proves it
    persistent: pass True there once you know your service keeps its data.
    """


def coordinator_of(
    coordination: RedisCoordination, submit_rate: Rate | None, read_rate: Rate | None
) -> Coordinator:
    """The coordinator of one client in the fleet ``coordination`` names (imports coredis)."""
    try:
        from ._redis_coordinator import RedisCoordinator  # noqa: PLC0415 - an extra
    except ImportError as exc:
        raise InvalidInputError(needs_extra("RedisCoordination", "redis", "coredis")) from exc
    return RedisCoordinator(
        coordination.url,
        namespace=coordination.namespace,
        submit_rate=submit_rate,
        read_rate=read_rate,
        lease=coordination.lease,
        remember=coordination.remember,
        unavailable_timeout=coordination.unavailable_timeout,
        command_timeout=coordination.command_timeout,
        allow_volatile=coordination.allow_volatile,
    )
