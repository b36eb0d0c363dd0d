"""Errors a web app can use: status_code, the answer's headers, JobTimeoutError as TimeoutError.

And the mistakes an argument check names: a local path passed as a ``str``.
"""

import pickle
from pathlib import Path

import pytest
from conftest import MARKET_SUBMIT, envelope

import recraft_async as ra

KEY = "sk-test-secret-123"
UPSCALE = MARKET_SUBMIT


def test_status_code_and_its_alias_http_status():
    """status_code, as openai and anthropic name it, is http_status too."""
    error = ra.NotFoundError("gone", code=404, http_status=404)
    assert error.status_code == 404
    assert error.http_status == 404
    assert error.headers == {}
    limited = ra.RateLimitError("slow", code=429, http_status=200, retry_after=3.0)
    assert (limited.status_code, limited.http_status, limited.retry_after) == (200, 200, 3.0)


def test_headers_are_a_read_only_copy_looked_up_in_any_case():
    """The headers are copied, cannot be changed, and match names in any case."""
    given = {"Retry-After": "7", "X-Request-Id": "r1"}
    error = ra.APIError("x", code=500, http_status=500, headers=given)
    given["X-Request-Id"] = "changed"
    assert error.headers["x-request-id"] == "r1"
    assert error.headers["RETRY-AFTER"] == "7"
    assert "retry-after" in error.headers
    assert 7 not in error.headers  # type: ignore[comparison-overlap]
    assert dict(error.headers) == {"retry-after": "7", "x-request-id": "r1"}
    assert len(error.headers) == 2
    with pytest.raises(TypeError):
        error.headers["x"] = "y"  # type: ignore[index]
    assert "r1" in repr(error.headers)
    assert pickle.loads(pickle.dumps(error.headers)) == error.headers  # noqa: S301 - our own


@pytest.mark.anyio
@pytest.mark.fake_clock
async def test_api_error_keeps_the_answers_headers_and_never_the_key(kie, make_client):
    """An error from an answer has its status and headers; the key is nowhere in it."""
    kie.post(UPSCALE).respond(
        401,
        json=envelope(None, 401, "You do not have access permissions"),
        headers={"X-Request-Id": "req-42"},
    )
    async with make_client(api_key=KEY) as client:
        with pytest.raises(ra.AuthenticationError) as caught:
            await client.upscale("https://i.test/a.png")
    error = caught.value
    assert (error.code, error.status_code, error.http_status) == (401, 401, 401)
    assert error.headers["x-request-id"] == "req-42"
    assert error.headers["content-type"] == "application/json"
    assert "authorization" not in error.headers
    texts = [str(error), repr(error), repr(error.headers), str(error.body), repr(vars(error))]
    for text in texts:
        assert KEY not in text


def test_job_timeout_error_is_a_timeout_error():
    """JobTimeoutError is a RecraftError and the builtin TimeoutError (so OSError)."""
    error = ra.JobTimeoutError("task t1 did not finish", task_id="t1")
    assert isinstance(error, ra.RecraftError)
    assert isinstance(error, TimeoutError)
    assert str(error) == "task t1 did not finish"
    assert error.task_id == "t1"
    assert error.errno is None
    with pytest.raises(TimeoutError) as caught:
        raise error
    assert caught.value is error


@pytest.mark.parametrize("name", ["a.png", "photos/a.png", "photos\\a.png", "~/a.jpg", "./a"])
def test_a_str_that_looks_like_a_path_is_told_to_be_a_path(name):
    """A str that is no URL but looks like a path: pass pathlib.Path(...)."""
    client = ra.AsyncRecraft(api_key="k")
    with pytest.raises(ra.InvalidInputError, match=r"pass pathlib\.Path\(") as caught:
        client.remove_background(name)
    assert "not an http(s) URL" in str(caught.value)


def test_a_str_naming_a_local_file_is_told_to_be_a_path(tmp_path, monkeypatch):
    """A str naming an existing file, even without a suffix, gets the same advice."""
    (tmp_path / "photo").write_bytes(b"x")
    monkeypatch.chdir(tmp_path)
    client = ra.AsyncRecraft(api_key="k")
    for name in ("photo", str(tmp_path / "photo")):
        with pytest.raises(ra.InvalidInputError, match="is a local file") as caught:
            client.upscale(name)
        assert f"pathlib.Path({name!r})" in str(caught.value)


@pytest.mark.parametrize("value", ["hello", "ftp://host/a.png", "file:///tmp/a.png", ""])
def test_other_bad_strings_keep_the_url_message(value):
    """Words and other schemes are no paths: the message asks for an http(s) URL."""
    client = ra.AsyncRecraft(api_key="k")
    with pytest.raises(ra.InvalidInputError) as caught:
        client.upscale(value)
    assert "pathlib" not in str(caught.value)


def test_a_path_object_is_still_taken_as_a_file(tmp_path):
    """pathlib.Path is how a local file is given: it is checked as one."""
    client = ra.AsyncRecraft(api_key="k")
    with pytest.raises(ra.InvalidInputError) as caught:
        client.upscale(Path(tmp_path / "missing.png"))
    assert "pathlib" not in str(caught.value)
