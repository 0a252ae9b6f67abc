"""Producing accepted events and dead letters; success means the broker acknowledged
every one (acks=all). On a timeout the caller answers 503 and nothing is lost: the client
still holds the events and retries (duplicates are dropped downstream by event id).

Memory stays bounded while the broker is slow or hung: at most ``max_in_flight`` requests
wait for acknowledgements, each for at most the ack timeout; any request beyond that is
answered 503 at once instead of queueing its events behind the others.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

from aiokafka import AIOKafkaProducer

from schemas import topics
from schemas.envelope import Envelope
from services.kit.publish import BrokerUnavailable, dead_letter_record, event_record, produce

DEFAULT_MAX_IN_FLIGHT = 256
PRODUCED_TOPICS = (topics.EVENTS.name, topics.DEAD_LETTER.name)


class TopicsMissing(Exception):
    """The broker answers but has not the topics ingest produces to."""


class Publisher:
    def __init__(
        self,
        producer: AIOKafkaProducer,
        ack_timeout_s: float,
        max_in_flight: int = DEFAULT_MAX_IN_FLIGHT,
    ) -> None:
        self._producer = producer
        self._timeout = ack_timeout_s
        self._max_in_flight = max_in_flight
        self._in_flight = 0

    @property
    def in_flight(self) -> int:
        """Requests waiting for the broker right now."""
        return self._in_flight

    async def publish(
        self, events: Sequence[Envelope], dead: Sequence[tuple[bytes, str, str]] = ()
    ) -> None:
        """Produce events (keyed by account) and dead letters (raw, reason, source).

        Raises ``BrokerUnavailable`` when not acknowledged within the timeout, or at once
        when ``max_in_flight`` requests already wait for the broker.
        """
        if not events and not dead:
            return
        if self._in_flight >= self._max_in_flight:
            raise BrokerUnavailable("too many requests waiting for the broker")
        records = [event_record(e) for e in events] + [dead_letter_record(*d) for d in dead]
        self._in_flight += 1
        try:
            await produce(self._producer, records, self._timeout)
        finally:
            self._in_flight -= 1

    async def ping(self) -> None:
        """Readiness: raises when no broker answers a metadata request, or when the broker
        lacks the topics ingest produces to (``abm topics`` creates them, never implicitly).

        A broker restarted empty is not ready: Tansu even acknowledges records sent to a
        topic it does not have, and keeps nothing.
        """
        metadata = await asyncio.wait_for(self._producer.client.fetch_all_metadata(), 2.0)
        missing = set(PRODUCED_TOPICS) - metadata.topics()
        if missing:
            raise TopicsMissing(", ".join(sorted(missing)))
