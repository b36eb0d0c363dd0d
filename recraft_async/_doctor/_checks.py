"""The library's assumptions about the service, each judged against what the doctor saw.

One ``Finding`` per assumption: ``confirmed``, ``different`` (with what was seen), or
``not seen`` (nothing in this run could tell). The assumptions are those of
``kie-api.md`` that no offline test can settle: the shapes of the answers, the states,
the timing, the prices, the result hosts.
"""

from __future__ import annotations

import json
import math
import urllib.parse
from collections.abc import Callable, Iterable
from typing import Any

import attrs

from recraft_async._core._dialects import DIALECTS
from recraft_async._core._errors import ProtocolError
from recraft_async._core._limits import PUBLISHED_PRICES
from recraft_async._core._policy import PollPolicy

from ._probe import Exchange
from ._session import TaskRun, code_of, data_of, retry_after

CONFIRMED, DIFFERENT, NOT_SEEN = "confirmed", "different", "not seen"
DOCUMENTED_STATES = ("waiting", "queuing", "generating", "success", "fail")
_EPOCH_MS = (10**12, 10**14)  # 2001 to the year 5138, in milliseconds
_POLL_TIMEOUT = PollPolicy().timeout
_FIRST_READ = PollPolicy().initial


@attrs.frozen
class Finding:
    """One assumption and the verdict on it."""

    assumption: str
    verdict: str
    seen: str


def judge(runs: list[TaskRun], balance_reads: list[Exchange]) -> list[Finding]:
    """Every finding of a doctor's run, in the order the table shows them."""
    reads = [read for run in runs for read in run.reads]
    records = [data_of(r) for r in reads if code_of(r) == 200 and isinstance(data_of(r), dict)]
    findings = [
        _balance_answer(balance_reads),
        _upload_answer([run.upload for run in runs if run.upload is not None]),
        _submit_answer([run.submit for run in runs if run.submit is not None]),
        _envelope(reads),
        *_fields(records, [run.final for run in runs if run.final is not None]),
        _states(records),
        _parsed(reads),
        _not_readable_yet(runs),
        _rate_limits([e for e in [*balance_reads, *reads] if code_of(e) == 429]),
    ]
    for run in runs:
        findings += [_outcome(run), _duration(run), _cost(run), _result(run), _link(run)]
    return findings


def _verdict(assumption: str, problems: list[str], seen_ok: str, *, seen: bool = True) -> Finding:
    if not seen:
        return Finding(assumption, NOT_SEEN, seen_ok)
    if problems:
        return Finding(assumption, DIFFERENT, "; ".join(dict.fromkeys(problems)))
    return Finding(assumption, CONFIRMED, seen_ok)


def _envelope_problems(exchange: Exchange) -> list[str]:
    body = exchange.body
    if not isinstance(body, dict):
        what = "not JSON" if exchange.text is not None else type(body).__name__
        return [f"the answer is {what} (HTTP {exchange.status})"]
    problems = []
    if not isinstance(body.get("code"), int) or isinstance(body.get("code"), bool):
        problems.append(f"code is {_kind(body.get('code'))}")
    message = body.get("msg", body.get("message"))
    if not isinstance(message, str):
        problems.append(f"msg is {_kind(message)}")
    return problems


def _balance_answer(answers: list[Exchange]) -> Finding:
    problems = []
    for answer in answers:
        problems += _envelope_problems(answer)
        data = data_of(answer)
        if isinstance(data, bool) or not isinstance(data, (int, float)):
            problems.append(f"data is {_kind(data)}")
    seen = ", ".join(str(data_of(a)) for a in answers)
    return _verdict(
        "balance: {code: 200, msg, data: a number}", problems, f"data {seen}", seen=bool(answers)
    )


_UPLOAD_FIELDS: dict[str, Callable[[Any], bool]] = {
    "downloadUrl": lambda v: isinstance(v, str) and v.startswith(("http://", "https://")),
    "fileName": lambda v: isinstance(v, str),
    "filePath": lambda v: isinstance(v, str),
    "fileSize": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "mimeType": lambda v: isinstance(v, str),
    "uploadedAt": lambda v: isinstance(v, str),
}


def _upload_answer(answers: list[Exchange]) -> Finding:
    problems = []
    for answer in answers:
        problems += _envelope_problems(answer)
        body = answer.body if isinstance(answer.body, dict) else {}
        if body.get("success") is not True:
            problems.append(f"success is {_kind(body.get('success'))}")
        data = data_of(answer)
        if not isinstance(data, dict):
            problems.append(f"data is {_kind(data)}")
            continue
        for name, fits in _UPLOAD_FIELDS.items():
            if name not in data:
                problems.append(f"data.{name} is missing")
            elif not fits(data[name]):
                problems.append(f"data.{name} is {_kind(data[name])}")
    return _verdict(
        "upload: {success: true, code: 200, msg, data: the 6 documented fields}",
        problems,
        f"{len(answers)} upload(s) as documented",
        seen=bool(answers),
    )


def _submit_answer(answers: list[Exchange]) -> Finding:
    problems = []
    for answer in answers:
        problems += _envelope_problems(answer)
        if code_of(answer) != 200:
            problems.append(f"code {code_of(answer)}: {_message(answer)}")
            continue
        data = data_of(answer)
        task_id = data.get("taskId") if isinstance(data, dict) else None
        if not isinstance(task_id, str) or not task_id:
            problems.append(f"data.taskId is {_kind(task_id)}")
    ids = ", ".join(str((data_of(a) or {}).get("taskId")) for a in answers)
    return _verdict(
        "submit: {code: 200, msg, data: {taskId: a string}}", problems, ids, seen=bool(answers)
    )


def _envelope(reads: list[Exchange]) -> Finding:
    problems = []
    for read in reads:
        problems += _envelope_problems(read)
        if isinstance(read.body, dict) and "data" not in read.body and code_of(read) == 200:
            problems.append("a code 200 answer without data")
    return _verdict(
        "status read: {code, msg (or message), data}",
        problems,
        f"{len(reads)} read(s)",
        seen=bool(reads),
    )


def _string(value: Any) -> bool:
    return isinstance(value, str)


def _json_string(value: Any) -> bool:
    if not isinstance(value, str):
        return False
    if not value:
        return True
    try:
        json.loads(value)
    except ValueError:
        return False
    return True


def _epoch_ms(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and _in(value, _EPOCH_MS)


def _ms(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def _in(value: int, bounds: tuple[int, int]) -> bool:
    return bounds[0] <= value < bounds[1]


# name: (what the library assumes, the test, must every record carry it, must the last)
_FIELDS: dict[str, tuple[str, Callable[[Any], bool], bool, bool]] = {
    "taskId": ("a string", _string, True, True),
    "model": ("a string", _string, False, False),
    "state": ("a string", _string, True, True),
    "param": ("a JSON string", _json_string, False, False),
    "resultJson": ("a JSON string", _json_string, False, True),
    "failCode": ("a string", _string, False, False),
    "failMsg": ("a string", _string, False, False),
    "costTime": ("milliseconds (an integer)", _ms, False, False),
    "createTime": ("ms since the epoch (an integer)", _epoch_ms, True, True),
    "updateTime": ("ms since the epoch (an integer)", _epoch_ms, False, False),
    "completeTime": ("ms since the epoch (an integer)", _epoch_ms, False, True),
}


def _fields(records: list[dict[str, Any]], finals: list[dict[str, Any]]) -> list[Finding]:
    findings = []
    for name, (expected, fits, always, at_end) in _FIELDS.items():
        problems, values = [], []
        for record in records:
            if name not in record:
                if always:
                    problems.append("missing")
                continue
            value = record[name]
            values.append(value)
            if value is not None and not fits(value):
                problems.append(f"{_kind(value)} such as {_sample(value)}")
        problems += [
            f"missing from the final record ({final.get('state')})"
            for final in finals
            if final.get(name) in (None, "") and at_end and final.get("state") != "fail"
        ]
        kinds = ", ".join(dict.fromkeys(_kind(v) for v in values)) or "absent"
        findings.append(_verdict(f"record.{name}: {expected}", problems, kinds, seen=bool(records)))
    return findings


def _states(records: list[dict[str, Any]]) -> Finding:
    states = list(dict.fromkeys(str(r.get("state")) for r in records if "state" in r))
    odd = [s for s in states if s not in DOCUMENTED_STATES]
    problems = [f"undocumented state {s!r}" for s in odd]
    return _verdict(
        f"states: {', '.join(DOCUMENTED_STATES)}",
        problems,
        "seen: " + ", ".join(states),
        seen=bool(states),
    )


def _parsed(reads: list[Exchange]) -> Finding:
    problems, parsed = [], 0
    for read in reads:
        data = data_of(read)
        if code_of(read) != 200 or not isinstance(data, dict):
            continue
        try:
            DIALECTS["market"].parse_record(data, json.dumps(read.body))
        except ProtocolError as exc:
            problems.append(f"refused: {exc}")
        parsed += 1
    return _verdict(
        "the client reads every record", problems, f"{parsed} record(s) read", seen=bool(parsed)
    )


def _not_ready(read: Exchange) -> bool:
    return code_of(read) == 404 or (code_of(read) == 422 and data_of(read) is None)


def _not_readable_yet(runs: list[TaskRun]) -> Finding:
    early = [(run, r) for run in runs for r in run.reads if _not_ready(r)]
    problems, seen = [], []
    for run, read in early:
        later = [r for r in run.reads if code_of(r) == 200 and r.started > read.started]
        if not later:
            problems.append(f"{run.operation.value}: never readable ({_message(read)})")
    for run in runs:
        mine = [r for r in run.reads if _not_ready(r)]
        if mine:
            last = max(r.since_submit or 0.0 for r in mine)
            seen.append(
                f"{run.operation.value}: {len(mine)} x '{_message(mine[0])}' up to {last:.1f} s"
            )
    return _verdict(
        "a new task may answer 404 or 422 'recordInfo is null' briefly, then reads",
        problems,
        "; ".join(seen) or "every read found its task",
        seen=bool(early),
    )


def _rate_limits(limited: list[Exchange]) -> Finding:
    problems, seen = [], []
    for answer in limited:
        header = answer.headers.get("retry-after")
        if header is None:
            seen.append("429 without Retry-After (the client backs off)")
        elif retry_after(answer) is None:
            problems.append(f"Retry-After {header!r} is not a number of seconds")
        else:
            seen.append(f"429 with Retry-After {header}")
    return _verdict(
        "a 429 may carry Retry-After (seconds)",
        problems,
        "; ".join(dict.fromkeys(seen)) or "no 429",
        seen=bool(limited),
    )


def _outcome(run: TaskRun) -> Finding:
    name = run.operation.value
    final = run.final or {}
    problems = []
    if final and final.get("state") != "success":
        problems.append(
            f"state {final.get('state')!r}, failCode {final.get('failCode')!r}:"
            f" {final.get('failMsg')!r}"
        )
    elif final and run.result_url is None:
        problems.append(f"no result URL in resultJson {_sample(final.get('resultJson'))}")
    return _verdict(
        f"{name}: the task succeeds with a result URL",
        problems,
        "success",
        seen=bool(final),
    )


def _duration(run: TaskRun) -> Finding:
    name = run.operation.value
    assumption = (
        f"{name}: ends within the poll timeout ({_POLL_TIMEOUT:g} s;"
        f" a fresh client first reads {_FIRST_READ:g} s after its submit)"
    )
    if run.timed_out:
        waited = run.reads[-1].since_submit or 0.0 if run.reads else 0.0
        last = data_of(run.reads[-1]) if run.reads else None
        state = last.get("state") if isinstance(last, dict) else None
        return Finding(assumption, DIFFERENT, f"still {state!r} after {waited:.1f} s")
    if run.ended_after is None:
        return Finding(assumption, NOT_SEEN, "no task was followed")
    cost = (run.final or {}).get("costTime")
    detail = f"ended {run.ended_after:.1f} s after its submit"
    if isinstance(cost, int):
        detail += f" (costTime {cost} ms)"
    problems = [] if run.ended_after <= _POLL_TIMEOUT else [detail]
    return _verdict(assumption, problems, detail)


def _cost(run: TaskRun) -> Finding:
    price = PUBLISHED_PRICES[run.operation]
    assumption = f"{run.operation.value}: costs {price:g} credits"
    before, after = run.balance_before, run.balance_after
    if before is None or after is None or run.task_id is None:
        return Finding(assumption, NOT_SEEN, "no balance before and after a task")
    cost = before - after
    seen = f"the balance went from {before:g} to {after:g}"
    problems = [] if math.isclose(cost, price, abs_tol=1e-9) else [f"{seen}: {cost:g} credits"]
    return _verdict(assumption, problems, seen)


def _result(run: TaskRun) -> Finding:
    assumption = f"{run.operation.value}: the result URL serves an image, without the key"
    return _image_fetch(assumption, run.direct)


def _link(run: TaskRun) -> Finding:
    assumption = f"{run.operation.value}: download-url gives a link to the image"
    link = run.link
    if link is None:
        return Finding(assumption, NOT_SEEN, "no result to ask about")
    if link.status == 404 and code_of(link) == 404:
        return Finding(assumption, NOT_SEEN, "the service has no such endpoint (HTTP 404)")
    data = data_of(link)
    if code_of(link) != 200 or not isinstance(data, str):
        return Finding(assumption, DIFFERENT, f"code {code_of(link)}, data {_kind(data)}")
    return _image_fetch(assumption, run.via_link)


def _image_fetch(assumption: str, fetched: Exchange | None) -> Finding:
    if fetched is None:
        return Finding(assumption, NOT_SEEN, "nothing fetched")
    host = urllib.parse.urlsplit(fetched.final_url or fetched.url).netloc
    kind = fetched.headers.get("content-type", "no content type")
    seen = f"HTTP {fetched.status} from {host}, {kind}, {fetched.image or 'not an image'}"
    ok = (
        fetched.status == 200
        and fetched.image is not None
        and kind.split(";")[0].strip().lower().startswith("image/")
    )
    return _verdict(assumption, [] if ok else [seen], seen)


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    return {bool: "a boolean", int: "an integer", float: "a number", str: "a string"}.get(
        type(value), "an object" if isinstance(value, dict) else "a list"
    )


def _sample(value: Any) -> str:
    text = json.dumps(value) if not isinstance(value, str) else repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def _message(exchange: Exchange) -> str:
    body = exchange.body if isinstance(exchange.body, dict) else {}
    return str(body.get("msg", body.get("message", f"HTTP {exchange.status}")))


def verdicts(findings: Iterable[Finding]) -> set[str]:
    """The verdicts among ``findings``."""
    return {finding.verdict for finding in findings}
