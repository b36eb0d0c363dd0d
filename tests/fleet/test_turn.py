"""Turn: one holder at a time, the waiter of lowest priority next, cancellation-safe."""

from __future__ import annotations

import anyio
import pytest

from recraft_async._fleet._turn import Turn

pytestmark = [pytest.mark.anyio, pytest.mark.fake_clock]


async def test_waiters_take_their_turn_by_priority():
    """While one holds it, later waiters go lowest priority first, then by arrival."""
    turn = Turn()
    order: list[str] = []

    async def take(name: str, priority: float) -> None:
        async with turn.hold(priority):
            order.append(name)
            await anyio.sleep(0.1)

    async with anyio.create_task_group() as group:
        group.start_soon(take, "first", 5.0)
        await anyio.sleep(0.01)
        for name, priority in (("c", 3.0), ("a", 1.0), ("b", 2.0), ("a2", 1.0)):
            group.start_soon(take, name, priority)
            await anyio.sleep(0.001)  # arrivals in this order (trio starts tasks in any)
        await anyio.sleep(0.01)
    assert order == ["first", "a", "a2", "b", "c"]


async def test_a_cancelled_waiter_neither_holds_nor_blocks_the_turn():
    """A waiter cancelled while queued, or just as it was handed the turn, passes it on."""
    turn = Turn()
    got: list[str] = []

    async def take(name: str) -> None:
        async with turn.hold(0.0):
            got.append(name)

    async with anyio.create_task_group() as group, turn.hold(0.0):
        with anyio.move_on_after(0.1):
            await take("cancelled while queued")
        group.start_soon(take, "next")
        await anyio.sleep(0.01)
    # Handed the turn and cancelled before running: the turn goes on to the next waiter.
    async with anyio.create_task_group() as group:
        async with turn.hold(0.0):
            scope = anyio.CancelScope()

            async def handed_then_cancelled() -> None:
                with scope:
                    await take("never")

            group.start_soon(handed_then_cancelled)
            group.start_soon(take, "after")
            await anyio.sleep(0.01)
        scope.cancel()  # the turn was just handed to it: it must pass it on
    assert got[0] == "next"
    assert "after" in got
    async with turn.hold(0.0):  # free again
        got.append("free")
    assert got[-1] == "free"
