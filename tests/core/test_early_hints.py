"""Callbacks that overtake their task's poll are remembered: the poll then reads at once.

A callback may come before its submit's bookkeeping is done (the journal, a fleet's
claim), or be forwarded by another worker: either way it must not be lost.
"""

from __future__ import annotations

import anyio
import httpx
import pytest
from conftest import API, SLOW_POLL, record

from recraft_async._core._coordination import LocalCoordinator
from recraft_async._core._dialects import DIALECTS
from recraft_async._core._jobs import Job
from recraft_async._core._models import Operation
from recraft_async._core._poll import Poller
from recraft_async._core._redact import Secret
from recraft_async._core._transport import Transport

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]

READ = "/api/v1/recraft/upscale/record-info"


def _poller(http: httpx.AsyncClient) -> Poller:
    """A bare Poller of the seed's dialect on SLOW_POLL, reads unpaced, no retries."""
    transport = Transport(http, base_url=API, api_key=Secret("k"), max_retries=0, timeout=5)
    return Poller(
        transport,
        DIALECTS["recraft"],
        reads=LocalCoordinator(None, None).reads,
        poll=SLOW_POLL,
        max_retries=0,
    )


async def test_a_callback_before_the_poll_begins_makes_the_first_read_immediate(kie):
    """hint() before wait_for(): the first read comes at once, not SLOW_POLL's 30 s later."""
    kie.get(READ).respond(json=record("t1"))
    async with httpx.AsyncClient() as http:
        poller = _poller(http)
        assert poller.hint("t1") is None  # nobody polls it yet: remembered
        job = Job(Operation.UPSCALE, None, task_id="t1")
        started = anyio.current_time()
        result = await poller.wait_for(job, submitted_at=started)
    assert result.task_id == "t1"
    assert anyio.current_time() - started < SLOW_POLL.initial  # virtual time, not wall


async def test_a_callback_remembered_too_long_ago_is_forgotten(kie):
    """An early hint older than a minute no longer cuts a poll short."""
    kie.get(READ).respond(json=record("t1"))
    async with httpx.AsyncClient() as http:
        poller = _poller(http)
        poller.hint("t1")
        await anyio.sleep(61)
        poller.hint("t2")  # remembering a new one drops the stale one
        assert "t1" not in poller._early
        job = Job(Operation.UPSCALE, None, task_id="t1")
        started = anyio.current_time()
        await poller.wait_for(job, submitted_at=started)
    assert anyio.current_time() - started >= SLOW_POLL.initial
