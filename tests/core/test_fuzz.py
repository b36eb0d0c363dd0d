"""Fuzzing every parser of the service's answers: whatever arrives, only RecraftErrors leave.

Arbitrary bytes, arbitrary JSON and mutations of KIE's documented payloads
(tests/data/kie_docs.json) go through ``decode_envelope``, then ``parse_task_id`` and both
dialects' ``parse_record`` on whatever ``data`` comes out, and through ``parse_callback``
with and without a webhook key. Any exception that is not a RecraftError fails.

The default run is derandomized (the same examples every time, no example database) and
has no deadline: about 1,000 examples in all. The long run spreads 100,000 examples over
the same tests::

    RECRAFT_FUZZ_EXAMPLES=100000 python -m pytest tests/core/test_fuzz.py -p no:cacheprovider
"""

from __future__ import annotations

import copy
import json
import os
from pathlib import Path

import httpx
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import recraft_async as ra
from recraft_async._core._dialects import DIALECTS, parse_task_id
from recraft_async._core._transport import decode_envelope
from recraft_async._core._webhooks import webhook_signature
from recraft_async.errors import RecraftError

DOCS = json.loads(
    (Path(__file__).parents[1] / "data" / "kie_docs.json").read_text(encoding="utf-8")
)
BODIES = {name: entry["body"] for name, entry in DOCS.items() if "body" in entry}
KEY = "whk-fuzz"
NOW = 1_769_670_760.0

TOTAL = int(os.environ.get("RECRAFT_FUZZ_EXAMPLES", "1000"))
# Each test's share of TOTAL: the documented payloads' mutations reach deepest.
SHARES = {"bytes": 0.15, "json": 0.25, "mutations": 0.35, "callbacks": 0.25}

settings.register_profile(
    "recraft-fuzz",
    deadline=None,  # a shared CI machine has slow moments; a deadline would only flake
    derandomize=True,  # the same examples on every run: a failure in CI reproduces locally
    database=None,  # nothing written into the work tree
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
FUZZ = settings.get_profile("recraft-fuzz")


def budget(name):
    """The settings of test ``name``: its share of the examples, at least 50."""
    return settings(FUZZ, max_examples=max(50, int(TOTAL * SHARES[name])))


# --- values ---------------------------------------------------------------------------


class Raw(str):
    """A JSON fragment written as is: numbers and nesting json.dumps cannot or will not write."""

    __slots__ = ()


RAW = st.sampled_from(
    [
        Raw("9" * 5000),
        Raw("-" + "1" * 4301),
        Raw("1" + "0" * 400),
        Raw("1e400"),
        Raw("-1e400"),
        Raw("1" + "0" * 400 + ".5"),
        Raw("NaN"),
        Raw("Infinity"),
        Raw('"\\ud800"'),
        Raw('"\\u0000"'),
        Raw('"²"'),
        Raw('"٢٠٠"'),
        Raw('" 200 "'),
        Raw('"200"'),
        Raw('"' + "1" * 5000 + '"'),
        Raw('"http://127.0.0.1:99999/x.png"'),
        Raw('"https://x.test/\\n.png"'),
        *(Raw("[" * n + "]" * n) for n in (50, 500, 900, 990, 2000, 100_000)),
        *(Raw('{"a":' * n + "1" + "}" * n) for n in (500, 990, 5000)),
        Raw("[" * 100_000),
    ]
)
KNOWN_KEYS = [
    "code", "msg", "message", "data", "taskId", "task_id", "state", "successFlag", "status",
    "resultJson", "response", "resultUrls", "resultImageUrl", "resultUrl", "createTime",
    "completeTime", "failCode", "failMsg", "errorCode", "errorMessage", "callbackType",
    "downloadUrl", "success",
]  # fmt: skip
KEYS = st.sampled_from(KNOWN_KEYS) | st.text(max_size=8)
SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.integers(min_value=-(10**40), max_value=10**40)
    | st.floats()
    | st.text(max_size=20)
    | st.sampled_from(["success", "fail", "waiting", "0", "1", "2", "3", "200", "", "t1"])
    | RAW
)


def containers(inner):
    """Lists and objects of ``inner`` values."""
    return st.lists(inner, max_size=4) | st.dictionaries(KEYS, inner, max_size=5)


JSON = st.recursive(SCALARS, containers, max_leaves=15)


def dump(value):
    """JSON text for ``value``, Raw fragments written verbatim."""
    if isinstance(value, Raw):
        return str(value)
    if isinstance(value, dict):
        return "{" + ",".join(f"{json.dumps(k)}:{dump(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ",".join(dump(v) for v in value) + "]"
    return json.dumps(value)


# A resultJson is JSON inside a string: arbitrary JSON, or a documented one, as text.
RESULT_JSON = st.one_of(
    JSON.map(dump),
    st.just('{"resultUrls":["https://example.com/generated-content.jpg"]}'),
    st.builds(lambda urls: json.dumps({"resultUrls": urls}), JSON),
    st.text(max_size=30),
)
STATUSES = st.sampled_from([200, 200, 200, 201, 400, 401, 402, 404, 422, 429, 455, 500, 501, 503])
CHARSETS = st.sampled_from(["", "utf-8", "latin-1", "utf-16", "idna", "hex", "rot13", "bogus"])
RETRY_AFTER = st.sampled_from(
    ["", "5", "-1", "1e400", "nan", "inf", "Wed, 21 Oct 2015 07:28:00 GMT", "Mon, 01 Jan 99999"]
) | st.text(max_size=30).filter(lambda text: text.isascii() and text.isprintable())


@st.composite
def headers(draw):
    """Response headers: a charset, and sometimes a Retry-After."""
    found = {}
    charset = draw(CHARSETS)
    found["Content-Type"] = "application/json" + (f"; charset={charset}" if charset else "")
    if draw(st.booleans()):
        found["Retry-After"] = draw(RETRY_AFTER)
    return found


# --- mutations of the documented payloads ---------------------------------------------


def paths(value, prefix=()):
    """Every path (keys and indices) into a JSON value, the root included."""
    yield prefix
    if isinstance(value, dict):
        for key, item in value.items():
            yield from paths(item, (*prefix, key))
    elif isinstance(value, list):
        for index, item in enumerate(value):
            yield from paths(item, (*prefix, index))


def swapped(value):
    """The same content in other types: numbers as strings, strings as numbers, wrapped."""
    if isinstance(value, bool):
        return [str(value).lower(), int(value), None]
    if isinstance(value, (int, float)):
        return [str(value), [value], {"value": value}, -value, value * 10**300]
    if isinstance(value, str):
        return [[value], {"value": value}, len(value), value * 50, value + "\x00"]
    if isinstance(value, dict):
        return [list(value.values()), json.dumps(value), None]
    if isinstance(value, list):
        return [dict(enumerate(value)), json.dumps(value), None]
    return [0, "", [], {}]


def replace(root, path, new):
    """``root`` with the value at ``path`` replaced by ``new``."""
    if not path:
        return new
    parent = root
    for step in path[:-1]:
        parent = parent[step]
    parent[path[-1]] = new
    return root


@st.composite
def mutated_documents(draw):
    """A documented payload with a few keys dropped, replaced, retyped or added."""
    name = draw(st.sampled_from(sorted(BODIES)))
    body = copy.deepcopy(BODIES[name])
    for _ in range(draw(st.integers(min_value=1, max_value=4))):
        path = draw(st.sampled_from(list(paths(body))))
        current = body
        for step in path:
            current = current[step]
        action = draw(st.sampled_from(["drop", "replace", "swap", "add", "result", "raw"]))
        if action == "drop" and path:
            parent = body
            for step in path[:-1]:
                parent = parent[step]
            del parent[path[-1]]
        elif action == "replace":
            body = replace(body, path, draw(JSON))
        elif action == "swap":
            body = replace(body, path, draw(st.sampled_from(swapped(current))))
        elif action == "add" and isinstance(current, dict):
            current[draw(KEYS)] = draw(JSON)
        elif action == "result" and isinstance(current, dict):
            current["resultJson"] = draw(RESULT_JSON)
        elif action == "raw":
            body = replace(body, path, draw(RAW))
    return body


# --- the parsers ----------------------------------------------------------------------


def tolerated(call, *args, **kwargs):
    """``call``'s result, or None if it raised a RecraftError; anything else propagates."""
    try:
        return call(*args, **kwargs)
    except RecraftError:
        return None


def through_client_parsers(response):
    """What the client does with an answer: the envelope, then the submit and status parsers."""
    decoded = tolerated(decode_envelope, response)
    if decoded is None:
        return
    data, raw = decoded
    tolerated(parse_task_id, data, raw)
    for dialect in DIALECTS.values():
        tolerated(dialect.parse_record, data, raw)


def signed_headers(text, timestamp):
    """Headers that sign the callback ``text`` for its first task id, when there is one."""
    try:
        envelope = json.loads(text)
    except (ValueError, RecursionError):
        return {}
    inner = envelope.get("data") if isinstance(envelope, dict) else None
    for task_id in (
        envelope.get("taskId") if isinstance(envelope, dict) else None,
        inner.get("taskId") if isinstance(inner, dict) else None,
        inner.get("task_id") if isinstance(inner, dict) else None,
    ):
        if isinstance(task_id, str) and task_id.isprintable():
            signature = webhook_signature(KEY, task_id, timestamp)
            return {"X-Webhook-Timestamp": timestamp, "X-Webhook-Signature": signature}
    return {}


def through_callback_parser(body, header_choice, dialect):
    """parse_callback as a webhook handler calls it: unsigned, then signed with a key."""
    text = body.decode("utf-8", "replace") if isinstance(body, bytes) else body
    tolerated(ra.parse_callback, body, dialect=dialect)
    if header_choice == "signed":
        found = signed_headers(text, str(int(NOW)))
    elif isinstance(header_choice, tuple):
        found = {"X-Webhook-Timestamp": header_choice[0], "X-Webhook-Signature": header_choice[1]}
    else:
        found = {}
    tolerated(ra.parse_callback, body, found, webhook_key=KEY, dialect=dialect, now=NOW)


HEADER_CHOICES = st.one_of(
    st.just("signed"),
    st.just("none"),
    st.tuples(
        st.sampled_from(["", str(int(NOW)), "nan", "inf", "1e400", "١٧٦٩٦٧٠٧٦٠"]) | st.text(),
        st.text(),
    ),
)
DIALECT_CHOICES = st.sampled_from([None, "market", "recraft"])


# --- the tests ------------------------------------------------------------------------


@pytest.mark.slow
@budget("bytes")
@given(body=st.binary(max_size=200) | RAW.map(str.encode), status=STATUSES, extra=headers())
def test_arbitrary_bytes_raise_only_recraft_errors(body, status, extra):
    """Any bytes with any status and charset: the envelope and parsers raise RecraftErrors only."""
    through_client_parsers(httpx.Response(status, content=body, headers=extra))


@pytest.mark.slow
@budget("json")
@given(value=JSON, status=STATUSES, extra=headers())
def test_arbitrary_json_raises_only_recraft_errors(value, status, extra):
    """Any JSON value, as the body or as an envelope's data: RecraftErrors only."""
    for body in (value, {"code": 200, "msg": "success", "data": value}):
        content = dump(body).encode("utf-8", "surrogatepass")
        through_client_parsers(httpx.Response(status, content=content, headers=extra))


@pytest.mark.slow
@budget("mutations")
@given(body=mutated_documents(), status=STATUSES, extra=headers())
def test_mutated_documented_payloads_raise_only_recraft_errors(body, status, extra):
    """KIE's documented payloads, damaged: RecraftErrors only, from every parser."""
    text = dump(body)
    content = text.encode("utf-8", "surrogatepass")
    through_client_parsers(httpx.Response(status, content=content, headers=extra))
    through_callback_parser(text, "signed", None)


@budget("callbacks")
@given(
    body=mutated_documents().map(dump) | JSON.map(dump) | st.binary(max_size=200),
    header_choice=HEADER_CHOICES,
    dialect=DIALECT_CHOICES,
)
@pytest.mark.slow
def test_callbacks_raise_only_recraft_errors(body, header_choice, dialect):
    """parse_callback with and without a key, any body and headers: RecraftErrors only."""
    through_callback_parser(body, header_choice, dialect)


def test_documented_payloads_still_parse():
    """The unmutated documents pass the same harness (the fuzz starts from good answers)."""
    data, raw = decode_envelope(httpx.Response(200, json=BODIES["record_success_rendered"]))
    record = DIALECTS["market"].parse_record(data, raw)
    assert record.result_urls == ("https://example.com/generated-content.jpg",)
    text = json.dumps(BODIES["callback_success"])
    signed = ra.parse_callback(text, signed_headers(text, str(int(NOW))), webhook_key=KEY, now=NOW)
    assert signed.record is not None
