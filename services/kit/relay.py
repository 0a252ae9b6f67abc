"""Relaying a consumer group's outbox to Kafka: what committed transactions queued is
published, then deleted. At-least-once; derived events carry deterministic ids, so a
re-publish after a crash between the send and the delete is de-duplicated downstream."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from aiokafka import AIOKafkaProducer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit import metrics, offsets
from services.kit.offsets import TopicPartitionKey
from services.kit.publish import send_records
from services.kit.retriable import RETRIABLE, error_kind

log = logging.getLogger(__name__)


class OutboxRelay:
    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        group: str,
        batch: int,
        send_timeout_s: float = 3.0,
    ) -> None:
        self._send_timeout = send_timeout_s
        self._sessions = sessions
        self._group = group
        self._batch = batch
        # The poll loop and the rebalance listener both relay; one at a time, or rows go
        # out twice.
        self._lock = asyncio.Lock()
        # Set when the outbox may hold rows of ours: a batch queued some, partitions were
        # assigned (their previous owner may have left some), or a relay failed. Most
        # batches queue nothing, and an empty relay is a transaction of its own.
        self._due = asyncio.Event()
        self._due.set()

    def kick(self) -> None:
        """The outbox may hold rows of ours: ``run`` relays them."""
        self._due.set()

    async def run(
        self,
        producer: AIOKafkaProducer,
        owned: Iterable[TopicPartitionKey],
        stop: asyncio.Event,
        max_backoff_s: float,
    ) -> None:
        """Relay whenever kicked, beside the consumer's batches: their writes never wait for
        the broker's acknowledgements. The broker or the database being away is retried
        with back-off; the first round after ``stop`` is set is the last."""
        backoff = 0.1
        while True:
            await self._due.wait()
            self._due.clear()  # first: a commit while this round runs kicks again
            last = stop.is_set()
            try:
                await self.relay(producer, owned)
            except RETRIABLE as error:
                metrics.CONSUMER_RETRIABLE_ERRORS.labels(self._group, error_kind(error)).inc()
                log.warning("outbox relay failed, retrying in %.1fs: %r", backoff, error)
                self._due.set()
                if last:
                    return
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, max_backoff_s)
                continue
            backoff = 0.1
            if last:
                return

    async def relay(self, producer: AIOKafkaProducer, owned: Iterable[TopicPartitionKey]) -> None:
        """Publish the rows queued under the partitions we own, oldest first. ``owned`` is
        read again for every batch: a partition revoked meanwhile is its new owner's."""
        async with self._lock:
            while await self._relay_batch(producer, list(owned)) == self._batch:
                pass

    async def _relay_batch(
        self, producer: AIOKafkaProducer, sources: list[TopicPartitionKey]
    ) -> int:
        async with self._sessions() as session, session.begin():
            rows = await offsets.pending(session, self._group, sources, self._batch)
            if not rows:
                return 0
            # Bounded: with the broker gone, aiokafka waits out its request timeout (40 s)
            # and SIGTERM would wait with it. A timeout rolls back: the rows stay queued.
            async with asyncio.timeout(self._send_timeout):
                await send_records(producer, [r.record for r in rows])
            await offsets.delete_published(session, [r.id for r in rows])
        for row in rows:
            metrics.OUTBOX_PUBLISHED.labels(self._group, row.record.topic).inc()
        return len(rows)
