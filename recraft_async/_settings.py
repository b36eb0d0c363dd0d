"""A client's settings: its arguments checked, and completed from the environment, once.

``AsyncRecraft(...)`` hands its arguments to ``resolve_settings`` and keeps the result;
``with_options`` makes its view through the constructor again, from ``arguments()``
with the view's own options, so every argument is checked in this one place.
"""

from __future__ import annotations

import importlib.util
import os
import urllib.parse
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

import attrs
import httpx

from ._bulk._journal import Journal
from ._core import _validate as check
from ._core._check import DialectName, check_dialect, is_loopback_host
from ._core._extras import needs_extra
from ._core._keys import key_from
from ._core._policy import PollPolicy, Rate
from ._core._redact import Secret
from ._fleet._redis import RedisCoordination
from .errors import InvalidInputError

if TYPE_CHECKING:
    from ._core._events import JobEvent
    from ._core._jobs import Job

DEFAULT_BASE_URL = "https://api.kie.ai"
DEFAULT_UPLOAD_BASE_URL = "https://kieai.redpandaai.co"
DEFAULT_SUBMIT_RATE = Rate(20, per=10.0)
# KIE's documented limit on status reads: 10 a second per API key.
DEFAULT_READ_RATE = Rate(10, per=1.0)
DEFAULT_DIALECT: DialectName = "market"
# KIE's advised schedule (2 s, growing by 1.5 to 15 s), learning from the first finishes.
DEFAULT_POLL = PollPolicy()
# Connections of the client's own httpx pool, whatever the jobs in flight: requests are
# paced (10 status reads a second, 20 submits per 10 s), so a few dozen carry them with
# uploads and downloads; httpcore's pool pass costs O(connections^2) per request, so a
# pool sized to the jobs in flight costs 2-3x the CPU per request at 1,000 of them.
DEFAULT_MAX_CONNECTIONS = 24
# Seconds for each API attempt as a whole (connect, headers and body).
DEFAULT_TIMEOUT = 30.0


@attrs.frozen
class Settings:
    """Every argument of ``AsyncRecraft``, checked; the names are the constructor's."""

    api_key: Secret
    base_url: str
    upload_base_url: str
    dialect: DialectName
    max_in_flight: int
    max_connections: int
    submit_rate: Rate | None
    read_rate: Rate | None
    poll: PollPolicy
    max_retries: int
    timeout: float
    http_client: httpx.AsyncClient | None
    journal: Journal | None
    webhook_key: Secret | None
    on_event: Callable[[Job, JobEvent], object] | None
    tracing: bool
    max_queued: int | None
    submit_within: float | None
    coordination: RedisCoordination | None
    state_file: Path | None

    def arguments(self) -> dict[str, Any]:
        """The constructor's arguments that make these settings again."""
        given = attrs.asdict(self, recurse=False)
        given["api_key"] = self.api_key.reveal()
        given["webhook_key"] = None if self.webhook_key is None else self.webhook_key.reveal()
        return given


def resolve_settings(
    *,
    api_key: str | None,
    base_url: str | None,
    max_in_flight: int,
    max_connections: int,
    submit_rate: Rate | None,
    poll: PollPolicy,
    max_retries: int,
    timeout: float,
    http_client: httpx.AsyncClient | None,
    dialect: DialectName | None,
    read_rate: Rate | None,
    upload_base_url: str | None,
    journal: Journal | None,
    webhook_key: str | None,
    on_event: Callable[[Job, JobEvent], object] | None,
    tracing: bool | None,
    max_queued: int | None,
    submit_within: float | None,
    coordination: RedisCoordination | None,
    state_file: str | os.PathLike[str] | None,
) -> Settings:
    """Check ``AsyncRecraft``'s arguments; None reads the environment, else the default."""
    key = key_from(api_key, "KIE_API_KEY", "the API key")
    if key is None:
        raise InvalidInputError("no API key: pass api_key= or set KIE_API_KEY")
    url, upload_url = _addresses(base_url, upload_base_url)
    webhook = key_from(webhook_key, "KIE_WEBHOOK_KEY", "the webhook key")
    if on_event is not None and not callable(on_event):
        raise InvalidInputError(f"on_event must be a function of (job, event), got {on_event!r}")
    if state_file is not None and not isinstance(state_file, (str, os.PathLike)):
        raise InvalidInputError(f"state_file must be a path or None, got {state_file!r}")
    return Settings(
        api_key=Secret(key),
        base_url=url,
        upload_base_url=upload_url,
        dialect=check_dialect(dialect or os.environ.get("KIE_DIALECT") or DEFAULT_DIALECT),
        max_in_flight=check.integer("max_in_flight", max_in_flight, minimum=1),
        max_connections=check.integer("max_connections", max_connections, minimum=1),
        submit_rate=check.optional_instance("submit_rate", submit_rate, Rate, "a Rate"),
        read_rate=check.optional_instance("read_rate", read_rate, Rate, "a Rate"),
        poll=check.instance("poll", poll, PollPolicy, "a PollPolicy"),
        max_retries=check.integer("max_retries", max_retries, minimum=0),
        timeout=check.positive("timeout", timeout),
        http_client=check.optional_instance(
            "http_client", http_client, httpx.AsyncClient, "an httpx.AsyncClient"
        ),
        journal=check.optional_instance("journal", journal, Journal, "a recraft_async.Journal"),
        webhook_key=None if webhook is None else Secret(webhook),
        on_event=on_event,
        tracing=_tracing(check.optional_boolean("tracing", tracing)),
        max_queued=check.optional_integer("max_queued", max_queued, minimum=1),
        submit_within=check.optional_positive("submit_within", submit_within),
        coordination=check.optional_instance(
            "coordination", coordination, RedisCoordination, "a RedisCoordination"
        ),
        state_file=None if state_file is None else Path(state_file),
    )


def _addresses(base_url: str | None, upload_base_url: str | None) -> tuple[str, str]:
    """The API's address and the uploads', from the arguments, the environment or defaults."""
    url = base_url or os.environ.get("KIE_BASE_URL") or DEFAULT_BASE_URL
    _check_base_url(url)
    upload_url = upload_base_url or os.environ.get("KIE_UPLOAD_BASE_URL")
    if upload_url is None:
        # A local base URL is an emulator or a local proxy: local files must not
        # leave the machine for KIE's real upload host while someone tests offline.
        host = urllib.parse.urlsplit(url).hostname or ""
        upload_url = url if _is_local_host(host) else DEFAULT_UPLOAD_BASE_URL
    _check_base_url(upload_url)
    return url.rstrip("/"), upload_url.rstrip("/")


def _check_base_url(url: str) -> None:
    parsed = urllib.parse.urlsplit(url)
    if parsed.scheme not in ("http", "https") or not parsed.hostname:
        raise InvalidInputError(f"base_url must be an http(s) URL, got {url!r}")
    if parsed.scheme == "http" and not is_loopback_host(parsed.hostname):
        # A name, even "localhost", is resolved by DNS or a hosts file: only an address
        # literal is sure to stay on this machine.
        raise InvalidInputError(
            f"refusing to send the API key over plain http to {parsed.hostname!r}, which is"
            " not a literal loopback address; use https, or http://127.0.0.1:<port>"
            " (http://[::1]:<port>) for a local server"
        )


def _is_local_host(host: str) -> bool:
    """Whether ``host`` means this machine or this process (an in-process emulator)."""
    # ".invalid" never resolves (RFC 6761): such a base URL only works through an
    # in-process transport, which the uploads should then use too.
    name = host.lower().rstrip(".")
    return is_loopback_host(host, by_name=True) or name.endswith(".invalid")


def _tracing(tracing: bool | None) -> bool:
    """Whether to trace: as asked, or (None) whenever OpenTelemetry is installed."""
    if tracing is False:
        return False
    if not _otel_installed():
        if tracing:
            raise InvalidInputError(needs_extra("tracing=True", "otel", "OpenTelemetry"))
        return False
    return True


def _otel_installed() -> bool:
    """Whether OpenTelemetry's API can be imported (found, not imported)."""
    try:
        return importlib.util.find_spec("opentelemetry.trace") is not None
    except (ImportError, ValueError):  # not even the "opentelemetry" namespace
        return False
