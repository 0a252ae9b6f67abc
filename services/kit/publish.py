"""Producing events onto the events topic, keyed by account; success means every record
was acknowledged by the broker (acks=all) within the timeout."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import topics
from schemas.envelope import Envelope
from schemas.events import encode_event


class BrokerUnavailable(Exception):
    """Not acknowledged in time: answer 503; the caller still holds the events to retry."""


async def produce_events(
    producer: AIOKafkaProducer, events: Sequence[Envelope], timeout_s: float
) -> None:
    try:
        await asyncio.wait_for(_send(producer, events), timeout_s)
    except (TimeoutError, KafkaError) as error:
        raise BrokerUnavailable(type(error).__name__) from error


async def _send(producer: AIOKafkaProducer, events: Sequence[Envelope]) -> None:
    pending = [
        await producer.send(
            topics.EVENTS.name,
            value=encode_event(event),
            key=topics.partition_key(event.account_key),
            headers=[(topics.HEADER_EVENT_TYPE, str(getattr(event, "type", "")).encode())],
        )
        for event in events
    ]
    await asyncio.gather(*pending)
