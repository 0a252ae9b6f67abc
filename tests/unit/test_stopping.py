"""A loop's step and a stop request (``stopping.unless_stopped``, the consumers' loop)."""

from __future__ import annotations

import asyncio

import pytest

from services.kit.stopping import unless_stopped


async def test_a_step_that_finishes_gives_its_result() -> None:
    async def step() -> float:
        await asyncio.sleep(0)
        return 0.4

    assert await unless_stopped(step(), asyncio.Event(), grace_s=1.0) == 0.4


async def test_a_step_in_flight_when_the_stop_comes_may_finish_within_the_grace() -> None:
    stop = asyncio.Event()
    committed = asyncio.Event()

    async def step() -> float:
        stop.set()  # the stop arrives mid-step
        await asyncio.sleep(0.05)
        committed.set()
        return 0.2

    assert await unless_stopped(step(), stop, grace_s=5.0) == 0.2
    assert committed.is_set()


async def test_a_step_waiting_on_a_gone_broker_is_cancelled_after_the_grace() -> None:
    stop = asyncio.Event()
    cancelled = asyncio.Event()

    async def step() -> float:
        try:
            await asyncio.Event().wait()  # as aiokafka's offset reset with no broker: forever
        except asyncio.CancelledError:
            cancelled.set()
            raise
        return 1.0

    async def stop_soon() -> None:
        await asyncio.sleep(0.01)
        stop.set()

    stopping = asyncio.create_task(stop_soon())
    assert await unless_stopped(step(), stop, grace_s=0.05) is None
    assert cancelled.is_set()
    await stopping


async def test_an_error_of_the_step_is_raised() -> None:
    async def step() -> float:
        raise RuntimeError("not retriable")

    with pytest.raises(RuntimeError, match="not retriable"):
        await unless_stopped(step(), asyncio.Event(), grace_s=1.0)
