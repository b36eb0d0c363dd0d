"""The suite's fake clock (tests/conftest.py): virtual time on both backends, opt-in."""

from __future__ import annotations

import anyio
import pytest

pytestmark = pytest.mark.anyio


@pytest.mark.fake_clock
async def test_an_hour_of_sleeps_and_timeouts_passes_in_virtual_time():
    """Sleeps, timeouts and concurrent timers move the virtual clock exactly, at once."""
    start = anyio.current_time()
    await anyio.sleep(3600)
    with anyio.move_on_after(5) as scope:
        await anyio.sleep(60)
    assert scope.cancelled_caught
    woke = []

    async def sleeper(seconds):
        await anyio.sleep(seconds)
        woke.append(seconds)

    async with anyio.create_task_group() as group:
        for seconds in (0.3, 0.1, 0.2):
            group.start_soon(sleeper, seconds)
    assert woke == [0.1, 0.2, 0.3]
    assert anyio.current_time() - start == pytest.approx(3605.3)


@pytest.mark.fake_clock
async def test_a_thread_in_a_fake_clock_test_is_an_error(tmp_path):
    """A thread would look idle to the clock, so starting one fails loudly."""
    with pytest.raises(RuntimeError, match="fake_clock"):
        await anyio.Path(tmp_path).exists()


async def test_unmarked_tests_keep_the_real_clock(tmp_path):
    """Without the marker time is real, and threads work."""
    start = anyio.current_time()
    await anyio.sleep(0.05)
    assert anyio.current_time() - start >= 0.04
    assert await anyio.Path(tmp_path).exists()
