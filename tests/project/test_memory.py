"""A queued job stays cheap: the memory figure of benchmarks/README.md, guarded."""

import gc
import tracemalloc

import pytest

# The seed's endpoints (/api/v1/recraft/...) in this module's respx mocks.
RESPX_DIALECT = "recraft"

pytestmark = [pytest.mark.anyio, pytest.mark.slow]  # a soak: in the full run only

JOBS = 20_000
# Python's own allocations per queued job (tracemalloc, not RSS) with the default options:
# 235 B when this guard was set, 340 B with a set entry per job. The bound leaves room for
# a field or two, not for a set entry or a list per job (the regressions it is there for).
MAX_BYTES_PER_JOB = 260


async def test_a_queued_job_costs_a_few_hundred_bytes(make_client):
    """20,000 jobs queued at the defaults allocate under MAX_BYTES_PER_JOB each."""
    async with make_client() as client:
        urls = [f"https://i.test/{i}.png" for i in range(JOBS)]
        client.upscale(urls[0]).cancel()  # the first job's one-off set-up is not counted
        gc.collect()
        tracemalloc.start()
        try:
            before = tracemalloc.get_traced_memory()[0]
            jobs = [client.upscale(url) for url in urls]
            grown = tracemalloc.get_traced_memory()[0] - before
        finally:
            tracemalloc.stop()
        for job in jobs:
            job.cancel()
    per_job = grown / JOBS
    assert per_job <= MAX_BYTES_PER_JOB, f"{per_job:.0f} B per queued job"
