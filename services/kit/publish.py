"""Producing records keyed by account; success means every record was acknowledged by the
broker (acks=all) within the timeout. Used by ingest and the API's writes; the consumers
publish the same records through their outbox."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from typing import Any

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import topics
from schemas.envelope import Envelope
from schemas.events import encode_event
from services.kit.offsets import OutboundRecord


class BrokerUnavailable(Exception):
    """Not acknowledged in time: answer 503; the caller still holds the events to retry."""


def event_record(event: Envelope, topic: topics.Topic = topics.EVENTS) -> OutboundRecord:
    return OutboundRecord(
        topic=topic.name,
        key=topics.partition_key(event.account_key),
        value=encode_event(event),
        headers=((topics.HEADER_EVENT_TYPE, str(getattr(event, "type", "")).encode()),),
    )


def dead_letter_record(raw: bytes, reason: str, source: str) -> OutboundRecord:
    return OutboundRecord(
        topic=topics.DEAD_LETTER.name,
        key=source.encode(),
        value=raw,
        headers=(
            (topics.HEADER_REASON, reason.encode()[:1024]),
            (topics.HEADER_SOURCE, source.encode()),
        ),
    )


async def produce(
    producer: AIOKafkaProducer, records: Sequence[OutboundRecord], timeout_s: float
) -> None:
    try:
        # A timeout scope rather than ``wait_for``, which wraps the sends in a task.
        async with asyncio.timeout(timeout_s):
            await send_records(producer, records)
    except (TimeoutError, KafkaError) as error:
        raise BrokerUnavailable(type(error).__name__) from error


async def produce_events(
    producer: AIOKafkaProducer, events: Sequence[Envelope], timeout_s: float
) -> None:
    await produce(producer, [event_record(event) for event in events], timeout_s)


async def send_records(producer: AIOKafkaProducer, records: Sequence[OutboundRecord]) -> None:
    """Send every record and wait until the broker acknowledged each (no timeout here)."""
    pending = [
        await producer.send(r.topic, value=r.value, key=r.key, headers=list(r.headers))
        for r in records
    ]
    try:
        for acknowledged in pending:  # all of them, as ``gather`` would, without its future
            await acknowledged
    except BaseException:
        # Given up on (a timeout, a cancellation, a failed one): the others still settle
        # later; read their outcome then, or asyncio logs each as never retrieved.
        for future in pending:
            future.add_done_callback(_retrieve)
        raise


def _retrieve(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
