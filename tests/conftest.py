"""Every async test runs on asyncio and on trio."""

from __future__ import annotations

import contextlib

import pytest
import respx

import recraft_async as ra


@pytest.fixture(
    params=[
        pytest.param("asyncio", id="asyncio"),
        pytest.param("trio", id="trio"),
    ]
)
def anyio_backend(request: pytest.FixtureRequest) -> str:
    """Parametrise anyio's pytest plugin over both backends."""
    return str(request.param)


API = "https://api.kie.ai"
FAST_POLL_KW = {"initial": 0.01, "factor": 1.5, "max_interval": 0.05, "timeout": 5.0}


def envelope(data: object = None, code: int = 200, msg: str = "success") -> dict[str, object]:
    """A KIE answer body."""
    return {"code": code, "msg": msg, "data": data}


def record(
    task_id: str = "t1", flag: object = 1, urls: tuple[str, ...] = ("https://cdn.test/o.png",)
) -> dict[str, object]:
    """A seed-dialect record-info answer body."""
    data: dict[str, object] = {
        "taskId": task_id,
        "successFlag": flag,
        "response": {"resultUrls": list(urls)} if urls else None,
        "errorCode": None,
        "errorMessage": None,
        "createTime": 1755078171000,
        "completeTime": 1755078172000,
    }
    return envelope(data)


@contextlib.asynccontextmanager
async def emulator_client(emulator, **options):
    """An open AsyncRecraft wired in-process to the running ``emulator``, uploads included."""
    async with emulator.http_client() as http:
        options = {
            "api_key": emulator.api_key,
            "base_url": emulator.base_url,
            "upload_base_url": emulator.base_url,
            "http_client": http,
            **options,
        }
        async with ra.AsyncRecraft(**options) as client:
            yield client


@pytest.fixture
def kie():
    """A respx router standing in for the KIE API; unmatched requests fail the test."""
    with respx.mock(base_url=API, assert_all_called=False, assert_all_mocked=True) as router:
        yield router


@pytest.fixture
def make_client():
    """Build an AsyncRecraft with test-friendly defaults (fast polling, no rate limits).

    The respx tests mock the seed's endpoints (``dialect="recraft"``), whose paths name
    the operation; the default dialect is covered against the emulator and the contract
    tests.
    """
    def make(**kwargs):
        kwargs.setdefault("api_key", "sk-test-secret-123")
        kwargs.setdefault("poll", ra.PollPolicy(**FAST_POLL_KW))
        kwargs.setdefault("submit_rate", None)
        kwargs.setdefault("read_rate", None)
        kwargs.setdefault("dialect", "recraft")
        return ra.AsyncRecraft(**kwargs)

    return make
