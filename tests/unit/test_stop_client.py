"""Stopping a Kafka client whose broker is gone (``kafka.stop_client``): each way aiokafka's
``stop`` can hang or fail with no broker ends in a logged give-up, never a hung service."""

from __future__ import annotations

import asyncio
import logging
from typing import Any, cast

import pytest
from aiokafka.errors import KafkaConnectionError

from services.kit.kafka import stop_client

GIVE_UP = "the broker did not answer while stopping the consumer"


class StoppingClient:
    """Stands in for an AIOKafkaConsumer: ``stop`` does what ``outcome`` says."""

    def __init__(self, outcome: str) -> None:
        self.outcome = outcome
        self.stopped = False

    async def stop(self) -> None:
        if self.outcome == "hangs":  # a group leave retried for as long as the broker is gone
            await asyncio.Event().wait()
        if self.outcome == "fails":
            raise KafkaConnectionError("connection refused")
        if self.outcome == "cancelled inside":  # its fetcher's backing-off request task
            raise asyncio.CancelledError
        self.stopped = True


async def _stop(client: StoppingClient, timeout_s: float = 5.0) -> None:
    await stop_client(cast(Any, client), "consumer", timeout_s)


async def test_a_client_that_stops_is_stopped_quietly(caplog: pytest.LogCaptureFixture) -> None:
    client = StoppingClient("stops")
    with caplog.at_level(logging.WARNING):
        await _stop(client)
    assert client.stopped
    assert GIVE_UP not in caplog.text


async def test_a_stop_that_hangs_is_given_up_after_the_timeout(
    caplog: pytest.LogCaptureFixture,
) -> None:
    loop = asyncio.get_running_loop()
    started = loop.time()
    with caplog.at_level(logging.WARNING):
        await _stop(StoppingClient("hangs"), timeout_s=0.05)
    assert 0.05 <= loop.time() - started < 2.0
    assert f"{GIVE_UP} (no answer in 0 s)" in caplog.text


@pytest.mark.parametrize(
    ("outcome", "why"),
    [("fails", "KafkaConnectionError"), ("cancelled inside", "requests to the broker were")],
)
async def test_a_stop_that_fails_is_logged_and_survived(
    outcome: str, why: str, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING):
        await _stop(StoppingClient(outcome))
    assert GIVE_UP in caplog.text and why in caplog.text


async def test_the_callers_own_cancellation_still_cancels_it() -> None:
    task = asyncio.create_task(_stop(StoppingClient("hangs")))
    await asyncio.sleep(0.01)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
