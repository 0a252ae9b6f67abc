"""Producing accepted events; success means the broker acknowledged every one (acks=all)."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer
from aiokafka.errors import KafkaError

from schemas import topics
from schemas.envelope import Envelope
from schemas.events import encode_event


class BrokerUnavailable(Exception):
    """The broker did not acknowledge in time: the caller answers 503 and nothing is lost,
    because the client still holds the events and will retry."""


class Publisher:
    def __init__(self, producer: AIOKafkaProducer, ack_timeout_s: float) -> None:
        self._producer = producer
        self._timeout = ack_timeout_s

    async def publish(
        self, events: Sequence[Envelope], dead: Sequence[tuple[bytes, str, str]] = ()
    ) -> None:
        """Produce events (keyed by account) and dead letters (raw, reason, source)."""
        try:
            await asyncio.wait_for(self._send_all(events, dead), self._timeout)
        except (TimeoutError, KafkaError) as error:
            raise BrokerUnavailable(type(error).__name__) from error

    async def _send_all(
        self, events: Sequence[Envelope], dead: Sequence[tuple[bytes, str, str]]
    ) -> None:
        pending = [
            await self._producer.send(
                topics.EVENTS.name,
                value=encode_event(event),
                key=topics.partition_key(event.account_key),
                headers=[(topics.HEADER_EVENT_TYPE, str(getattr(event, "type", "")).encode())],
            )
            for event in events
        ]
        pending += [
            await self._producer.send(
                topics.DEAD_LETTER.name,
                value=raw,
                key=source.encode(),
                headers=[
                    (topics.HEADER_REASON, reason.encode()[:1024]),
                    (topics.HEADER_SOURCE, source.encode()),
                ],
            )
            for raw, reason, source in dead
        ]
        await asyncio.gather(*pending)

    async def ping(self) -> None:
        """Raises when no broker answers a metadata request (readiness)."""
        await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
