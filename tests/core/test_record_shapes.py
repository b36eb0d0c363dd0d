"""Record shapes public clients meet: credits, resultJson as an object, param, result URLs."""

from __future__ import annotations

import json
from typing import Any

import pytest

import recraft_async as ra
from recraft_async._core._dialects import DIALECTS

URL = "https://cdn.test/o.png"


def market(state: str = "success", **fields: Any) -> dict[str, Any]:
    """A market record's data, with a resultJson string for a success unless given."""
    data: dict[str, Any] = {"taskId": "t1", "state": state}
    if state == "success":
        data["resultJson"] = json.dumps({"resultUrls": [URL]})
    data.update(fields)
    return data


def parse(data: dict[str, Any], dialect: str = "market") -> ra.TaskRecord:
    """The record a status answer's data parses to."""
    return DIALECTS[dialect].parse_record(data, json.dumps({"code": 200, "data": data}))


@pytest.mark.parametrize(
    ("stated", "credits"),
    [(0.5, 0.5), (1, 1.0), ("0.5", 0.5), (" 12.25 ", 12.25), ("3", 3.0), (0, 0.0)],
)
def test_credits_are_read_from_a_number_or_numeric_string(stated, credits):
    """A record's creditsConsumed, a number or numeric string, is its credits (fractions kept)."""
    assert parse(market(creditsConsumed=stated)).credits == pytest.approx(credits)


@pytest.mark.parametrize(
    "stated",
    [True, "lots", "", [], {}, -1, "nan", "inf", "1e400", 10**400, "9" * 40, None],
    ids=lambda v: repr(v)[:12],
)
def test_unusable_credits_are_none_never_an_error(stated):
    """A bool, word, container, negative, non-finite or huge figure: None; the record parses."""
    record = parse(market(creditsConsumed=stated))
    assert record.credits is None
    assert record.result_urls == (URL,)


def test_records_credits_come_first_then_the_callbacks_name():
    """Records' creditsConsumed wins; callbacks' consumeCredits counts when it is not usable."""
    assert parse(market(creditsConsumed=2, consumeCredits=3)).credits == pytest.approx(2)
    assert parse(market(creditsConsumed="?", consumeCredits=3)).credits == pytest.approx(3)
    assert parse(market(consumeCredits="0.5")).credits == pytest.approx(0.5)
    assert parse(market()).credits is None


def test_the_seed_dialect_reads_credits_too():
    """A per-product record stating its cost gives it as well."""
    data = {"taskId": "t1", "successFlag": 1, "response": {"resultUrls": [URL]}}
    assert parse({**data, "creditsConsumed": 1}, "recraft").credits == pytest.approx(1)


def test_result_json_may_be_the_object_itself():
    """A resultJson that is a JSON object (not the documented string) gives its URLs."""
    record = parse(market(resultJson={"resultUrls": [URL]}))
    assert record.state is ra.TaskState.SUCCESS
    assert record.result_urls == (URL,)


@pytest.mark.parametrize("result_json", [None, "", {}, [], 5])
def test_a_failure_with_any_result_json_keeps_its_own_error(result_json):
    """A failed record parses whatever its resultJson holds; the failure's words are kept."""
    record = parse(market("fail", resultJson=result_json, failCode="501", failMsg="no"))
    assert (record.state, record.result_urls, record.error_message) == (
        ra.TaskState.FAILED,
        (),
        "no",
    )


@pytest.mark.parametrize("result_json", [[URL], 5, {"resultUrls": []}, {}])
def test_a_success_without_urls_in_any_form_is_a_protocol_error(result_json):
    """A success whose resultJson (object or not) has no URL: ProtocolError with the body."""
    with pytest.raises(ra.ProtocolError) as caught:
        parse(market(resultJson=result_json))
    assert caught.value.body is not None


@pytest.mark.parametrize(
    ("param", "parsed"),
    [
        ('{"model": "m", "input": {"image": "x"}}', {"model": "m", "input": {"image": "x"}}),
        ({"model": "m"}, {"model": "m"}),
        ("not json {", "not json {"),
        ("[" * 100_000, "[" * 100_000),
        (None, None),
    ],
    ids=["json-string", "object", "not-json", "too-deep", "absent"],
)  # fmt: skip
def test_param_is_parsed_when_it_is_json_and_kept_raw_otherwise(param, parsed):
    """param: JSON text parsed, an object kept, anything else as sent; never an error."""
    record = parse(market(param=param))
    assert record.param == parsed
    assert record.raw["param"] == param


@pytest.mark.parametrize(
    "url",
    [
        "file:///etc/passwd",
        "javascript:alert(1)",
        "https://cdn.test/a\x00b.png",
        "http://[::1",
        "//cdn.test/o.png",
        "https:///o.png",
    ],
    ids=["file", "javascript", "nul", "broken-ipv6", "no-scheme", "no-host"],
)
@pytest.mark.parametrize("form", ["string", "object", "seed"])
def test_a_success_whose_url_is_not_http_is_a_protocol_error(url, form):
    """A result URL that is not a fetchable http(s) URL is never a success: ProtocolError."""
    if form == "seed":
        data = {"taskId": "t1", "successFlag": 1, "response": {"resultUrls": [URL, url]}}
    else:
        result = {"resultUrls": [URL, url]}
        data = market(resultJson=result if form == "object" else json.dumps(result))
    with pytest.raises(ra.ProtocolError, match="result URL") as caught:
        parse(data, "recraft" if form == "seed" else "market")
    assert json.loads(caught.value.body or "")["data"] == data


def test_an_ipv6_result_url_is_fine():
    """A well-formed IPv6 literal is an http URL like any other."""
    record = parse(market(resultJson={"resultUrls": ["http://[::1]:8080/o.png"]}))
    assert record.result_urls == ("http://[::1]:8080/o.png",)


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_a_job_whose_success_has_a_file_url_never_succeeds(kie, make_client):
    """A success naming file:///etc/passwd ends the job in a ProtocolError at that read."""
    bad = market(resultJson=json.dumps({"resultUrls": ["file:///etc/passwd"]}))
    kie.post("/api/v1/jobs/createTask").respond(json={"code": 200, "data": {"taskId": "t1"}})
    reads = kie.get("/api/v1/jobs/recordInfo").respond(
        json={"code": 200, "msg": "success", "data": bad}
    )
    async with make_client(dialect="market") as client:
        with pytest.raises(ra.ProtocolError) as caught:
            await client.upscale("https://i.test/a.png")
        with pytest.raises(ra.ProtocolError):
            await client.get_task("t1", "upscale")
    # Final: the record says the same on every read, so it is read once (then by get_task).
    assert reads.call_count == 2
    assert "file:///etc/passwd" in (caught.value.body or "")
    assert "t1" in str(caught.value)
