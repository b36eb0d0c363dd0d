"""The default client's status reads on the fake clock: KIE's advised schedule, cold.

A fresh client knows nothing of how long tasks take, so it reads 2 s after the submit and
then at intervals growing by 1.5 up to 15 s, for a task of 1 s or of minutes alike; what
it learns adds reads and, after this process's own finishes, leaves out the early ones.
"""

from __future__ import annotations

import itertools
import json

import anyio
import httpx
import pytest
from conftest import envelope

import recraft_async as ra

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]

SUBMIT = "/api/v1/jobs/createTask"
READ = "/api/v1/jobs/recordInfo"
# KIE's advised moments, seconds after the submit (2 s, then x1.5 up to 15 s).
ADVISED = [2.0, 5.0, 9.5, 16.25, 26.375, 41.375, 56.375, 71.375]


class Service:
    """A market-dialect service whose tasks each take the next of ``durations`` seconds."""

    def __init__(self, durations: list[float]) -> None:
        self.durations = list(durations)
        self.ends: dict[str, float] = {}
        self.reads: dict[str, list[float]] = {}
        self.submitted: dict[str, float] = {}

    def submit(self, _request: httpx.Request) -> httpx.Response:
        """Start the next task now."""
        task_id = f"t{len(self.ends)}"
        now = anyio.current_time()
        self.submitted[task_id] = now
        self.ends[task_id] = now + self.durations.pop(0)
        self.reads[task_id] = []
        return httpx.Response(200, json=envelope({"taskId": task_id}))

    def read(self, request: httpx.Request) -> httpx.Response:
        """Answer a status read, noting when (after its submit) it came."""
        task_id = request.url.params["taskId"]
        now = anyio.current_time()
        self.reads[task_id].append(now - self.submitted[task_id])
        done = now >= self.ends[task_id]
        data = {
            "taskId": task_id,
            "model": "recraft/crisp-upscale",
            "state": "success" if done else "generating",
            "resultJson": json.dumps({"resultUrls": [f"https://r.test/{task_id}.png"]})
            if done
            else "",
            "createTime": 1_700_000_000_000,
            "completeTime": 1_700_000_000_000
            + round(1000 * (self.ends[task_id] - self.submitted[task_id]))
            if done
            else None,
        }
        return httpx.Response(200, json=envelope(data))


def _client(kie, service: Service, **options) -> ra.AsyncRecraft:
    """The default client (default poll, read and submit budgets), market dialect."""
    kie.post(SUBMIT).mock(side_effect=service.submit)
    kie.get(READ).mock(side_effect=service.read)
    return ra.AsyncRecraft(api_key="sk-test", **options)


@pytest.mark.parametrize("duration", [1.0, 4.0, 20.0, 60.0])
async def test_a_fresh_clients_first_job_is_read_on_kies_advised_schedule(kie, duration):
    """First job of a fresh client: reads at 2, 5, 9.5, ... s until the first after its end."""
    service = Service([duration])
    async with _client(kie, service) as client:
        await client.upscale("https://i.test/a.png")
    expected = [at for at in ADVISED if at < duration]
    expected.append(next(at for at in ADVISED if at >= duration))
    assert service.reads["t0"] == [pytest.approx(at) for at in expected]


async def test_one_job_at_a_time_is_never_read_later_than_advised(kie):
    """Ten jobs in a row of 1 s each: every one is found by its read at 2 s, learnt or not."""
    service = Service([1.0] * 10)
    async with _client(kie, service) as client:
        for index in range(10):
            await client.upscale(f"https://i.test/{index}.png")
    assert all(reads[-1] <= 2.0 + 1e-6 for reads in service.reads.values())


async def test_learnt_times_leave_out_the_reads_before_the_fastest_finish(kie):
    """After this process saw 40 s tasks finish, a new job is not read at 2, 5 or 9.5 s."""
    service = Service([40.0] * 8)
    async with _client(kie, service) as client:
        for index in range(8):
            await client.upscale(f"https://i.test/{index}.png")
    first_job, last_job = service.reads["t0"], service.reads["t7"]
    assert first_job[:3] == [pytest.approx(2.0), pytest.approx(5.0), pytest.approx(9.5)]
    assert last_job[0] > 26.0  # the advised reads before 40 s found nothing before
    assert last_job[-1] <= 41.375 + 1e-6  # and it is found no later than advised


async def test_a_slow_task_is_read_sparingly(kie):
    """A task of ten minutes is read every 15 s (max_interval), not every 2 s."""
    service = Service([600.0])
    async with _client(kie, service) as client:
        await client.upscale("https://i.test/slow.png")
    reads = service.reads["t0"]
    gaps = [b - a for a, b in itertools.pairwise(reads)]
    assert max(gaps) == pytest.approx(15.0)
    assert len(reads) == len([at for at in ADVISED if at < 71.0]) + 37  # 71.375 .. 611.375
