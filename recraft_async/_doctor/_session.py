"""What the doctor does with the service: balance, upload, submit, follow, fetch.

One operation after the other, with the balance read between them, so that each task's
cost is known on its own. Every request goes through the ``Probe`` and is kept; the
checks (``_checks``) read the observations afterwards and judge nothing here.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable
from typing import Any

import anyio
import attrs

from recraft_async._core._check import SubmitRequest
from recraft_async._core._dialects import DIALECTS
from recraft_async._core._files import UPLOAD_PATH
from recraft_async._core._models import Operation

from ._probe import Exchange, Probe

# KIE allows 10 status reads a second per key; one task at a time read twice a second
# sees each state and when the task ended, to half a second.
READ_INTERVAL = 0.5
_MARKET = DIALECTS["market"]
_DOCUMENTED_FINAL = ("success", "fail")
# Codes that say the key is wrong or the account cannot pay: stop before spending more.
_REFUSALS = {401: "the key was refused", 402: "the account has too few credits"}


class Refused(Exception):  # noqa: N818 - says what happened, like the errors it stands for
    """The service refused the key or the account: a usage problem, exit status 2."""


@attrs.frozen
class Where:
    """The service's addresses."""

    base_url: str
    upload_base_url: str


@attrs.define
class TaskRun:
    """One operation's whole story, as the doctor saw it."""

    operation: Operation
    balance_before: float | None = None
    upload: Exchange | None = None
    image_url: str | None = None
    submit: Exchange | None = None
    task_id: str | None = None
    reads: list[Exchange] = attrs.field(factory=list)
    ended_after: float | None = None  # seconds from the submit's answer to the final read
    final: dict[str, Any] | None = None  # the record that ended the task
    timed_out: bool = False
    result_url: str | None = None
    direct: Exchange | None = None
    link: Exchange | None = None
    via_link: Exchange | None = None
    balance_after: float | None = None


def code_of(exchange: Exchange) -> int | None:
    """The answer's own code: the body's ``code`` first, the HTTP status second."""
    body = exchange.body
    if isinstance(body, dict) and isinstance(body.get("code"), int):
        return int(body["code"])
    return exchange.status


def data_of(exchange: Exchange) -> Any:
    """The answer's ``data``, or None."""
    return exchange.body.get("data") if isinstance(exchange.body, dict) else None


def balance_of(exchange: Exchange) -> float | None:
    """The balance a credit answer gives, or None."""
    data = data_of(exchange)
    if code_of(exchange) != 200 or isinstance(data, bool) or not isinstance(data, (int, float)):
        return None
    return float(data) if math.isfinite(data) else None


class Session:
    """Runs the doctor's steps against one service; ``say`` reports progress."""

    def __init__(
        self, probe: Probe, where: Where, say: Callable[[str], None], *, timeout: float
    ) -> None:
        self.probe = probe
        self.where = where
        self.say = say
        self.timeout = timeout
        self.runs: list[TaskRun] = []
        self.balance_reads: list[Exchange] = []

    async def balance(self) -> float | None:
        """Read the balance; a refused key raises ``Refused``."""
        exchange = await self.probe.call("credits", "GET", self._api("/api/v1/chat/credit"))
        self.balance_reads.append(exchange)
        self._stop_on_refusal(exchange, "reading the balance")
        return balance_of(exchange)

    async def run(self, operation: Operation, image: bytes, balance: float | None) -> TaskRun:
        """Upload ``image``, submit one task of ``operation``, follow it, fetch its result."""
        run = TaskRun(operation, balance_before=balance)
        self.runs.append(run)
        name = operation.value
        await self._upload(run, image)
        if run.image_url is None:
            self.say(f"{name}: the upload gave no image URL; skipping the task")
            return run
        await self._submit(run)
        if run.task_id is None:
            self.say(f"{name}: the submit gave no task id; nothing to follow")
        else:
            self.say(f"{name}: submitted task {run.task_id}; reading its status")
            await self._follow(run)
        if run.result_url is not None:
            await self._fetch(run)
        run.balance_after = await self.balance()
        return run

    async def _upload(self, run: TaskRun, image: bytes) -> None:
        file_name = f"doctor-{run.operation.value}.png"
        exchange = await self.probe.call(
            f"upload {run.operation.value}",
            "POST",
            self.where.upload_base_url + "/api/file-stream-upload",
            form={"uploadPath": f"{UPLOAD_PATH}/doctor", "fileName": file_name},
            file=(file_name, image, "image/png"),
            operation=run.operation.value,
        )
        run.upload = exchange
        self._stop_on_refusal(exchange, "uploading")
        data = data_of(exchange)
        url = data.get("downloadUrl") if isinstance(data, dict) else None
        if isinstance(url, str) and url.startswith(("http://", "https://")):
            run.image_url = url

    async def _submit(self, run: TaskRun) -> None:
        # The library's own request, so that what is checked is what it sends.
        path, body = _MARKET.submit(SubmitRequest(run.operation, run.image_url))
        exchange = await self.probe.call(
            f"submit {run.operation.value}",
            "POST",
            self._api(path),
            json_body=body,
            operation=run.operation.value,
        )
        run.submit = exchange
        self._stop_on_refusal(exchange, "submitting")
        data = data_of(exchange)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if isinstance(task_id, str) and task_id:
            run.task_id = task_id

    async def _follow(self, run: TaskRun) -> None:
        assert run.submit is not None  # noqa: S101 - only a submitted task is followed
        submitted = run.submit.started + run.submit.seconds
        path, query = _MARKET.status(run.operation, run.task_id or "")
        url = self._api(path) + "?" + "&".join(f"{k}={v}" for k, v in query.items())
        while True:
            since = self.probe.now() - submitted
            exchange = await self.probe.call(
                f"read {run.operation.value}",
                "GET",
                url,
                operation=run.operation.value,
                since_submit=since,
            )
            run.reads.append(exchange)
            record = data_of(exchange)
            if code_of(exchange) == 200 and isinstance(record, dict) and _ended(record):
                run.ended_after, run.final = since, record
                run.result_url = _first_result_url(record)
                self.say(f"{run.operation.value}: {record.get('state')!s} after {since:.1f} s")
                return
            if since >= self.timeout:
                run.timed_out = True
                self.say(f"{run.operation.value}: not ended after {self.timeout:g} s; giving up")
                return
            await anyio.sleep(_pause(exchange))

    async def _fetch(self, run: TaskRun) -> None:
        url = run.result_url or ""
        name = run.operation.value
        run.direct = await self.probe.call(f"result {name}", "GET", url, with_key=False)
        run.link = await self.probe.call(
            f"download-url {name}", "POST", self._api("/api/v1/common/download-url"),
            json_body={"url": url},
        )  # fmt: skip
        link = data_of(run.link)
        if code_of(run.link) == 200 and isinstance(link, str) and link.startswith("http"):
            run.via_link = await self.probe.call(
                f"result via link {name}", "GET", link, with_key=False
            )

    def _api(self, path: str) -> str:
        return self.where.base_url + path

    def _stop_on_refusal(self, exchange: Exchange, doing: str) -> None:
        reason = _REFUSALS.get(code_of(exchange) or 0)
        if reason is not None:
            raise Refused(f"{reason} while {doing} (code {code_of(exchange)})")


def _ended(record: dict[str, Any]) -> bool:
    """Whether a record is final: a documented final state, or the marks of an end.

    An undocumented state is not known to be final, but a completion time, a result or a
    failure code says the task is over: reading on until the timeout would tell nothing.
    """
    if record.get("state") in _DOCUMENTED_FINAL:
        return True
    return any(record.get(field) not in (None, "", 0) for field in ("completeTime", "resultJson"))


def _first_result_url(record: dict[str, Any]) -> str | None:
    raw = record.get("resultJson")
    try:
        result = json.loads(raw) if isinstance(raw, str) else raw
    except ValueError:
        return None
    urls = result.get("resultUrls") if isinstance(result, dict) else None
    first = urls[0] if isinstance(urls, list) and urls else None
    return first if isinstance(first, str) and first.startswith(("http://", "https://")) else None


def _pause(exchange: Exchange) -> float:
    """Seconds before the next read: the interval, or what a 429 asked for."""
    if code_of(exchange) == 429:
        retry = retry_after(exchange)
        return max(READ_INTERVAL, min(retry if retry is not None else 2.0, 60.0))
    return READ_INTERVAL


def retry_after(exchange: Exchange) -> float | None:
    """The Retry-After (seconds) an answer carried, if it is a number."""
    text = exchange.headers.get("retry-after")
    try:
        seconds = float(text) if text is not None else None
    except ValueError:
        return None
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None
