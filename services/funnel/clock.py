"""The funnel's clock: a ``ClockTicked`` on every partition of the events topic, every
``funnel_tick_interval_s``, so that windows expire without new events (see ``expiry``).

A tick's time is the wall clock minus ``funnel_tick_lateness_s`` (events may arrive that
late and still be applied before an expiry they would have prevented), rounded down to
the interval. Its id depends only on the partition and that time, so every member of the
group produces the same ticks and the consumers apply each one once.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import UTC, datetime, timedelta

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas import topics
from schemas.events import ClockTicked, encode_event
from services.kit import kafka
from services.kit.runner import Sidecar
from services.kit.settings import CommonSettings
from services.kit.stopping import wait_any

log = logging.getLogger(__name__)

SOURCE = "funnel-clock"


def ticks(
    now: datetime, interval_s: float, lateness_s: float, partitions: int
) -> list[ClockTicked]:
    """The ticks of the round at ``now``: one per partition, at the same rounded time."""
    moment = now - timedelta(seconds=lateness_s)
    step = int(interval_s * 1_000_000)
    micros = int(moment.timestamp() * 1_000_000) // step * step
    at = datetime.fromtimestamp(micros / 1_000_000, UTC)
    return [
        ClockTicked(
            event_id=f"tick-{partition}-{at.isoformat()}",
            occurred_at=at,
            received_at=now,
            source=SOURCE,
            partition=partition,
        )
        for partition in range(partitions)
    ]


def clock_ticker(settings: CommonSettings, interval_s: float, lateness_s: float) -> Sidecar:
    """A sidecar producing a round of ticks every ``interval_s`` (0: no ticks)."""

    async def tick(_sessions: async_sessionmaker[AsyncSession], stop: asyncio.Event) -> None:
        if interval_s <= 0:
            return
        producer: AIOKafkaProducer | None = None  # started at the first round, kept
        try:
            while not await wait_any([stop], interval_s):
                try:
                    if producer is None:
                        producer = await _started_producer(settings)
                    await _send_round(producer, interval_s, lateness_s)
                except KafkaError as error:  # the next round catches up: ticks only move on
                    log.warning("clock tick not produced: %r", error)
        finally:
            if producer is not None:
                await kafka.stop_client(producer, "clock producer")

    return tick


async def _started_producer(settings: CommonSettings) -> AIOKafkaProducer:
    """A started producer; one that failed to start is closed (aiokafka's clients are not
    restarted after a failed start), so the next round makes a new one."""
    producer = kafka.create_producer(settings)
    try:
        await producer.start()
    except BaseException:
        await producer.stop()
        raise
    return producer


async def _send_round(producer: AIOKafkaProducer, interval_s: float, lateness_s: float) -> None:
    now = datetime.now(UTC)
    for tick in ticks(now, interval_s, lateness_s, topics.EVENTS.partitions):
        await producer.send_and_wait(
            topics.EVENTS.name, encode_event(tick), partition=tick.partition
        )
