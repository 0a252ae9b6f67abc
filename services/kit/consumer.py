"""The consumer shell shared by intent and funnel.

Reads micro-batches, hands each partition's decoded events to a ``BatchHandler`` (which
loads state, runs the pure core and writes the new state), and commits that state, the
consumed offsets, the applied event ids and the outgoing records (outbox) in ONE database
transaction. The database, not Kafka, is the source of truth for offsets: on assignment
the shell seeks to the stored offsets. Killing the process at any instant therefore
neither loses nor double-counts an event; after the commit the outbox is relayed to Kafka
(at-least-once, with deterministic event ids so downstream de-duplicates).

Errors: undecodable records go to the dead-letter topic (through the same outbox) and the
shell moves on; the broker or database being away is retried with back-off, never
skipped; anything else crashes the process, which restarts from the stored offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from pydantic import ValidationError
from sqlalchemy.exc import InterfaceError, OperationalError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas import topics
from schemas.events import Event, decode_event
from services.kit import metrics, offsets
from services.kit.offsets import OffsetConflict, OutboundRecord, TopicPartitionKey
from services.kit.settings import CommonSettings

log = logging.getLogger(__name__)

# The broker or the database being away: back off and retry the same batch.
RETRIABLE = (OperationalError, InterfaceError, KafkaError, OSError, TimeoutError)


@dataclass(frozen=True, slots=True)
class InboundRecord:
    topic: str
    partition: int
    offset: int
    event: Event


class BatchHandler(Protocol):
    """Service-specific part: state in, pure processing, state out. Never commits."""

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]: ...


@dataclass
class ConsumerStatus:
    """What /readyz and the lag gauges read."""

    started: bool = False
    assigned: set[TopicPartitionKey] = field(default_factory=set)
    last_batch_at: float | None = None


@dataclass(frozen=True, slots=True)
class ShellOptions:
    max_batch: int = 1000
    poll_timeout_ms: int = 200
    linger_s: float = 0.05
    outbox_batch: int = 1000
    dedup_retention: timedelta = timedelta(days=7)
    prune_every_batches: int = 1000
    max_backoff_s: float = 10.0


class ConsumerShell:
    def __init__(
        self,
        *,
        settings: CommonSettings,
        group_id: str,
        topic_names: Sequence[str],
        handler: BatchHandler,
        sessionmaker: async_sessionmaker[AsyncSession],
        options: ShellOptions | None = None,
    ) -> None:
        self._settings = settings
        self._group = group_id
        self._topic_names = list(topic_names)
        self._handler = handler
        self._sessions = sessionmaker
        self._options = options or ShellOptions()
        self._positions: dict[TopicPartitionKey, int | None] = {}
        self._batches = 0
        self.status = ConsumerStatus()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        # The loop and the rebalance listener both relay; one at a time, or rows go twice.
        self._relaying = asyncio.Lock()
        # Set while the partitions we own are seeked to their stored offsets: polling waits
        # for it, so records fetched before our seek are not fetched for nothing.
        self._settled = asyncio.Event()

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then finish the batch, commit and leave the group."""
        self._consumer = AIOKafkaConsumer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            client_id=f"{self._settings.kafka_client_id}-{self._group}",
            group_id=self._group,
            enable_auto_commit=False,
            auto_offset_reset="earliest",
            max_poll_records=self._options.max_batch,
            session_timeout_ms=self._settings.kafka_session_timeout_ms,
            heartbeat_interval_ms=self._settings.kafka_heartbeat_interval_ms,
        )
        self._producer = AIOKafkaProducer(
            bootstrap_servers=self._settings.kafka_bootstrap,
            acks="all",
            enable_idempotence=self._settings.kafka_enable_idempotence,
            linger_ms=5,
        )
        try:
            await self._start_clients(stop)
            self._consumer.subscribe(self._topic_names, listener=_Rebalance(self))
            self.status.started = True
            await self._loop(stop)
        finally:
            self.status.started = False
            await self._consumer.stop()  # leaves the group so partitions move at once
            await self._producer.stop()

    async def _start_clients(self, stop: asyncio.Event) -> None:
        """Connect, waiting out a broker that is not up yet (back-off, never give up)."""
        assert self._consumer is not None and self._producer is not None
        for client in (self._producer, self._consumer):
            backoff = 0.2
            while not stop.is_set():
                try:
                    await client.start()
                except KafkaError as error:
                    log.warning("broker unreachable (%r); retrying in %.1fs", error, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._options.max_backoff_s)
                else:
                    break

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            try:
                await self._poll_once()
                backoff = 0.1
            except OffsetConflict as conflict:
                metrics.CONSUMER_CONFLICTS.labels(self._group).inc()
                log.warning("offset conflict, re-seeking: %s", conflict)
                await self._reseek(list(self._positions))
            except RETRIABLE as error:
                log.warning("retriable error, backing off %.1fs: %r", backoff, error)
                await asyncio.sleep(backoff)
                backoff = min(backoff * 2, self._options.max_backoff_s)
                await self._reseek(list(self._positions))

    async def _poll_once(self) -> None:
        if not self._settled.is_set():
            # Bounded, so that a stop request is seen while no partition is assigned yet.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), self._options.poll_timeout_ms / 1000)
            return
        batch = await self._fill_batch()
        if batch:
            await self._apply_batch(batch)
            await self._relay_outbox()
        self._export_lag()

    async def _fill_batch(self) -> dict[TopicPartition, list[Any]]:
        """One fetch often brings a few dozen records; linger briefly to fill the batch, as
        per-transaction costs dominate small batches."""
        assert self._consumer is not None
        limit = self._options.max_batch
        batch: dict[TopicPartition, list[Any]] = await self._consumer.getmany(
            timeout_ms=self._options.poll_timeout_ms, max_records=limit
        )
        count = sum(len(messages) for messages in batch.values())
        deadline = time.monotonic() + self._options.linger_s
        while batch and count < limit and time.monotonic() < deadline:
            more = await self._consumer.getmany(timeout_ms=5, max_records=limit - count)
            if not more:
                break
            for tp, messages in more.items():
                batch.setdefault(tp, []).extend(messages)
                count += len(messages)
        return batch

    async def _apply_batch(self, batch: dict[TopicPartition, list[Any]]) -> None:
        """One transaction for the whole batch: one state load and one write, whatever the
        number of partitions in it."""
        started = time.perf_counter()
        unseen = self._unseen(batch)
        if not unseen:
            return
        records: list[InboundRecord] = []
        outbox: dict[TopicPartitionKey, list[OutboundRecord]] = {}
        for key, messages in unseen.items():
            decoded, dead = _decode(messages, key)
            records += decoded
            outbox[key] = dead
            metrics.CONSUMER_EVENTS.labels(self._group, "dead_lettered").inc(len(dead))
        async with self._sessions() as session, session.begin():
            fresh = await self._drop_applied(session, records)
            outbound = await self._handler.apply(session, fresh) if fresh else []
            _attribute(outbound, fresh, outbox)
            await offsets.mark_applied(session, self._group, [r.event.event_id for r in fresh])
            for key, queued in outbox.items():
                await offsets.enqueue(session, self._group, key, queued)
                next_offset = unseen[key][-1].offset + 1
                await offsets.advance_offset(
                    session, self._group, key, self._positions[key], next_offset
                )
            await self._maybe_prune(session)
        advanced = {key: messages[-1].offset + 1 for key, messages in unseen.items()}
        self._positions.update(advanced)
        await self._commit_to_kafka(advanced)
        metrics.CONSUMER_EVENTS.labels(self._group, "applied").inc(len(fresh))
        metrics.CONSUMER_BATCH_SECONDS.labels(self._group).observe(time.perf_counter() - started)
        metrics.CONSUMER_BATCH_SIZE.labels(self._group).observe(len(records))
        self.status.last_batch_at = time.time()

    def _unseen(self, batch: dict[TopicPartition, list[Any]]) -> dict[TopicPartitionKey, list[Any]]:
        """Messages at or past the stored position of partitions we still own."""
        unseen: dict[TopicPartitionKey, list[Any]] = {}
        for tp, messages in batch.items():
            key = (tp.topic, tp.partition)
            if key not in self._positions:
                continue  # revoked while the batch was in flight
            position = self._positions[key] or 0
            fresh = [m for m in messages if m.offset >= position]
            if fresh:
                unseen[key] = fresh
        return unseen

    async def _drop_applied(
        self, session: AsyncSession, records: list[InboundRecord]
    ) -> list[InboundRecord]:
        """Events this group already applied (retries, re-publishes) are skipped, once."""
        seen = await offsets.already_applied(
            session, self._group, [r.event.event_id for r in records]
        )
        fresh: list[InboundRecord] = []
        for record in records:
            if record.event.event_id in seen:
                metrics.CONSUMER_EVENTS.labels(self._group, "duplicate").inc()
                continue
            seen.add(record.event.event_id)
            fresh.append(record)
        return fresh

    async def _maybe_prune(self, session: AsyncSession) -> None:
        self._batches += 1
        if self._batches % self._options.prune_every_batches == 0:
            await offsets.forget_applied_before(session, self._group, self._options.dedup_retention)

    async def _relay_outbox(self) -> None:
        """Publish what committed transactions queued, then delete it. At-least-once."""
        async with self._relaying:
            await self._relay_pending()

    async def _relay_pending(self) -> None:
        assert self._producer is not None
        while True:
            async with self._sessions() as session, session.begin():
                rows = await offsets.pending(
                    session, self._group, list(self._positions), self._options.outbox_batch
                )
                if not rows:
                    return
                futures = [
                    await self._producer.send(
                        r.record.topic,
                        value=r.record.value,
                        key=r.record.key,
                        headers=list(r.record.headers),
                    )
                    for r in rows
                ]
                await asyncio.gather(*futures)
                await offsets.delete_published(session, [r.id for r in rows])
            for row in rows:
                metrics.OUTBOX_PUBLISHED.labels(self._group, row.record.topic).inc()
            if len(rows) < self._options.outbox_batch:
                return

    async def _commit_to_kafka(self, advanced: dict[TopicPartitionKey, int]) -> None:
        """Mirror the stored offsets to Kafka so standard lag tooling works; advisory only."""
        assert self._consumer is not None
        if not advanced:
            return
        try:
            await self._consumer.commit({TopicPartition(t, p): o for (t, p), o in advanced.items()})
        except KafkaError as error:
            log.debug("advisory Kafka commit failed: %r", error)

    async def on_assigned(self, assigned: set[TopicPartition]) -> None:
        metrics.CONSUMER_REBALANCES.labels(self._group).inc()
        await self._reseek([(tp.topic, tp.partition) for tp in assigned])
        self.status.assigned = set(self._positions)
        self._settled.set()
        log.info("assigned %d partitions", len(assigned))
        await self._relay_outbox()

    def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._settled.clear()
        for tp in revoked:
            self._positions.pop((tp.topic, tp.partition), None)
            with contextlib.suppress(KeyError):
                metrics.CONSUMER_LAG.remove(self._group, tp.topic, str(tp.partition))
        self.status.assigned = set(self._positions)

    async def _reseek(self, partitions: list[TopicPartitionKey]) -> None:
        """Seek each partition to the offset stored in the database (or its beginning)."""
        assert self._consumer is not None
        async with self._sessions() as session:
            stored = await offsets.load_offsets(session, self._group, partitions)
        for key in partitions:
            tp = TopicPartition(*key)
            self._positions[key] = stored.get(key)
            if key in stored:
                self._consumer.seek(tp, stored[key])
            else:
                await self._consumer.seek_to_beginning(tp)

    def _export_lag(self) -> None:
        assert self._consumer is not None
        for (topic, partition), position in self._positions.items():
            highwater = self._consumer.highwater(TopicPartition(topic, partition))
            if highwater is not None:
                lag = max(0, highwater - (position or 0))
                metrics.CONSUMER_LAG.labels(self._group, topic, str(partition)).set(lag)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, shell: ConsumerShell) -> None:
        self._shell = shell

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._shell.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._shell.on_assigned(assigned)


def _decode(
    messages: list[Any], key: TopicPartitionKey
) -> tuple[list[InboundRecord], list[OutboundRecord]]:
    records: list[InboundRecord] = []
    dead: list[OutboundRecord] = []
    for message in messages:
        try:
            event = decode_event(message.value or b"")
        except ValidationError as error:
            dead.append(dead_letter(message, key, _reason(error)))
            continue
        records.append(InboundRecord(key[0], key[1], message.offset, event))
    return records, dead


def _attribute(
    outbound: list[OutboundRecord],
    records: list[InboundRecord],
    outbox: dict[TopicPartitionKey, list[OutboundRecord]],
) -> None:
    """Queue each output under the partition its account's events came from, so that the
    owner of that partition relays it, in order, after a crash or a rebalance."""
    source = {r.event.account_key.encode(): (r.topic, r.partition) for r in records}
    fallback = next(iter(outbox))
    for record in outbound:
        outbox[source.get(record.key or b"", fallback)].append(record)


def dead_letter(message: Any, key: TopicPartitionKey, reason: str) -> OutboundRecord:
    return OutboundRecord(
        topic=topics.DEAD_LETTER.name,
        key=message.key,
        value=message.value or b"",
        headers=(
            (topics.HEADER_REASON, reason.encode()),
            (topics.HEADER_SOURCE, b"consumer"),
            (topics.HEADER_ORIGINAL_TOPIC, key[0].encode()),
            (topics.HEADER_ORIGINAL_PARTITION, str(key[1]).encode()),
            (topics.HEADER_ORIGINAL_OFFSET, str(message.offset).encode()),
        ),
    )


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where or 'body'}: {first.get('msg', 'invalid')}"[:1024]
