"""Producing accepted events and dead letters; success means the broker acknowledged
every one (acks=all). On a timeout the caller answers 503 and nothing is lost: the client
still holds the events and retries (duplicates are dropped downstream by event id)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from schemas.envelope import Envelope
from services.kit.publish import dead_letter_record, event_record, produce


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, ack_timeout_s: float) -> None:
        self._producer = producer
        self._timeout = ack_timeout_s

    async def publish(
        self, events: Sequence[Envelope], dead: Sequence[tuple[bytes, str, str]] = ()
    ) -> None:
        """Produce events (keyed by account) and dead letters (raw, reason, source)."""
        records = [event_record(e) for e in events] + [dead_letter_record(*d) for d in dead]
        await produce(self._producer, records, self._timeout)

    async def ping(self) -> None:
        """Raises when no broker answers a metadata request (readiness)."""
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
