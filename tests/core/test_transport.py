"""The envelope: the body's code first, the HTTP status second, typed errors with bodies."""

import httpx
import pytest

import recraft_async as ra
from recraft_async._core._redact import Secret
from recraft_async._core._transport import decode_envelope


def _response(status=200, json=None, text=None, headers=None):
    request = httpx.Request("GET", "https://api.kie.ai/x")
    if json is not None:
        return httpx.Response(status, json=json, headers=headers, request=request)
    return httpx.Response(status, text=text, headers=headers, request=request)


@pytest.mark.parametrize(
    ("code", "cls"),
    [
        (400, ra.InvalidRequestError),
        (401, ra.AuthenticationError),
        (402, ra.InsufficientCreditsError),
        (404, ra.NotFoundError),
        (422, ra.InvalidRequestError),
        (429, ra.RateLimitError),
        (455, ra.ServiceUnavailableError),
        (500, ra.ServerError),
        (501, ra.GenerationFailedError),
        (502, ra.ServerError),
        (503, ra.ServiceUnavailableError),
        (505, ra.FeatureDisabledError),
        (418, ra.InvalidRequestError),
    ],
)
def test_body_code_wins_over_http_200(code, cls):
    """A body code of 4xx/5xx under HTTP 200 raises the mapped error with everything kept."""
    body = {"code": code, "msg": "nope", "data": None}
    with pytest.raises(cls) as caught:
        decode_envelope(_response(200, json=body))
    error = caught.value
    assert (error.code, error.http_status, error.message) == (code, 200, "nope")
    assert '"nope"' in error.body


def test_code_as_string_is_read():
    """A code sent as a string is still a code."""
    with pytest.raises(ra.AuthenticationError):
        decode_envelope(_response(200, json={"code": "401", "msg": "x"}))


def test_http_status_maps_when_body_says_nothing():
    """An HTTP error with a non-JSON page maps by the HTTP status, body attached."""
    with pytest.raises(ra.ServiceUnavailableError) as caught:
        decode_envelope(_response(503, text="<html>down</html>"))
    assert caught.value.body == "<html>down</html>"


def test_http_error_with_ok_body_still_fails():
    """HTTP 500 with a body claiming 200 is not a success."""
    with pytest.raises(ra.ServerError):
        decode_envelope(_response(500, json={"code": 200, "data": {}}))


def test_rate_limit_carries_retry_after():
    """A 429 reads Retry-After into .retry_after."""
    with pytest.raises(ra.RateLimitError) as caught:
        decode_envelope(
            _response(429, json={"code": 429, "msg": "slow"}, headers={"Retry-After": "4"})
        )
    assert caught.value.retry_after == 4.0


@pytest.mark.parametrize(
    ("response", "why"),
    [
        (_response(200, text="<html>gateway</html>"), "not JSON"),
        (_response(200, json=[1, 2]), "not a JSON object"),
        (_response(200, json={"code": 200}), "envelope"),
        (_response(200, json={"data": {}}), "envelope"),
    ],
)
def test_shapeless_answers_are_protocol_errors(response, why):
    """Non-JSON or envelope-less answers raise ProtocolError with the raw text."""
    with pytest.raises(ra.ProtocolError, match=why) as caught:
        decode_envelope(response)
    assert caught.value.body == response.text


def test_secret_never_shows():
    """The key's holder hides it from repr and str."""
    secret = Secret("sk-live-abc")
    assert "sk-live-abc" not in repr(secret)
    assert "sk-live-abc" not in str(secret)
    assert secret.reveal() == "sk-live-abc"
