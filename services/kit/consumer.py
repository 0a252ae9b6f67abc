"""The consumer shell shared by intent and funnel.

Reads micro-batches, hands each partition's decoded events to a ``BatchHandler`` (which
loads state, runs the pure core and writes the new state), and commits that state, the
consumed offsets, the applied event ids and the outgoing records (outbox) in ONE database
transaction. The database, not Kafka, is the source of truth for offsets: on assignment
the shell seeks to the stored offsets. Killing the process at any instant therefore
neither loses nor double-counts an event; after the commit the outbox is relayed to Kafka
(at-least-once, with deterministic event ids so downstream de-duplicates).

Pipelined (PostgreSQL): while one batch's writes and commit are in flight, the next batch
is decoded, its ids claimed and, for a ``TwoPhaseHandler``, its new state computed from
the state the batch ahead is writing (``Ahead``). Its own writes start only once the batch
ahead committed; if that batch failed, the next one is rolled back unwritten. So the
database and the process's CPU work at the same time, and what is committed, in which
order, is what the sequential loop commits.

Errors: undecodable records go to the dead-letter topic (through the same outbox) and the
shell moves on; the broker or database being away is retried with back-off, never
skipped; anything else crashes the process, which restarts from the stored offsets.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import KafkaError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.events import Event
from services.kit import metrics, offsets
from services.kit.batches import Ahead, BatchHandler, Deferred, PreparedBatch, TwoPhaseHandler
from services.kit.inbound import (
    REASON_CLASSES,
    InboundRecord,
    attribute_outputs,
    decode_records,
)
from services.kit.kafka import STOP_TIMEOUT_S, create_consumer, create_producer, stop_client
from services.kit.lag import PartitionLag
from services.kit.offsets import OffsetConflict, OutboundRecord, TopicPartitionKey
from services.kit.positions import StoredPositions
from services.kit.relay import OutboxRelay
from services.kit.retriable import RETRIABLE, error_kind
from services.kit.settings import CommonSettings
from services.kit.stopping import finish_within, unless_stopped

log = logging.getLogger(__name__)

__all__ = [
    "Ahead",
    "BatchHandler",
    "ConsumerShell",
    "ConsumerStatus",
    "InboundRecord",
    "PreparedBatch",
    "ShellOptions",
    "TwoPhaseHandler",
]


@dataclass(slots=True)
class _OpenBatch:
    """A batch whose transaction is open: read, de-duplicated and prepared."""

    session: AsyncSession
    unseen: dict[TopicPartitionKey, list[Any]]
    moves: dict[TopicPartitionKey, tuple[int | None, int]]  # (expected, next) offsets
    fresh: list[InboundRecord]
    outbox: dict[TopicPartitionKey, list[OutboundRecord]]
    prepared: PreparedBatch | None
    size: int  # the records read for the handler, duplicates included
    started: float
    transaction_started: float


@dataclass(frozen=True, slots=True)
class _InFlight:
    batch: _OpenBatch
    done: asyncio.Task[None]


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
    prune_every_s: float = 60.0
    max_backoff_s: float = 10.0
    # Leaving the group and flushing the relay's producer wait at most this long (see
    # ``kafka.stop_client``).
    close_timeout_s: float = STOP_TIMEOUT_S
    # The relay waits at most this long for the broker's acknowledgements of a batch of
    # outbox rows; beyond it the rows stay queued and the loop retries (and sees a stop).
    relay_timeout_s: float = 3.0
    # After a stop request, the loop's step in progress (a batch, say) gets this long to
    # finish before it is cancelled (see ``stopping.unless_stopped``).
    stop_grace_s: float = 2.0
    # The events the handler does anything with (None: all). The others are passed over
    # before de-duplication: no id claimed, no handler call, only their offsets advance.
    relevant: Callable[[Event], bool] | None = None
    # Prepare the next batch while the previous one is written (see the module's doc).
    # Off for SQLite, which has one writer at a time: the next batch would wait anyway.
    pipelined: bool = True


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
        self._positions = StoredPositions(group_id, sessionmaker)
        self._relaying: asyncio.Task[None] | None = None
        self._next_prune = time.monotonic() + self._options.prune_every_s
        self._lag = PartitionLag(group_id)
        metrics.start_consumer_series(group_id, self._topic_names, REASON_CLASSES)
        self.status = ConsumerStatus()
        self._consumer: AIOKafkaConsumer | None = None
        self._producer: AIOKafkaProducer | None = None
        self._relay = OutboxRelay(
            sessionmaker, group_id, self._options.outbox_batch, self._options.relay_timeout_s
        )
        # Set while the partitions we own are seeked to their stored offsets: polling waits
        # for it, so records fetched before our seek are not fetched for nothing.
        self._settled = asyncio.Event()
        self._in_flight: _InFlight | None = None

    async def run(self, stop: asyncio.Event) -> None:
        """Consume until ``stop`` is set; then finish the batch, commit and leave the group."""
        self._consumer = create_consumer(self._settings, self._group, self._options.max_batch)
        # The relay answers nobody: a short linger gathers its records into fewer requests.
        self._producer = create_producer(self._settings, linger_ms=5)
        try:
            await self._start_clients(stop)
            self._consumer.subscribe(self._topic_names, listener=_Rebalance(self))
            self.status.started = True
            self._relaying = asyncio.create_task(
                self._relay.run(self._producer, self._positions, stop, self._options.max_backoff_s)
            )
            await self._loop(stop)
        finally:
            self.status.started = False
            await self._drop_in_flight()
            if self._relaying is not None:
                self._relay.kick()  # it sees ``stop`` set: one last round
                await finish_within(self._relaying, self._options.stop_grace_s, "outbox relay")
            timeout = self._options.close_timeout_s
            await stop_client(self._consumer, "consumer", timeout)  # leaves the group
            await stop_client(self._producer, "relay producer", timeout)

    async def _start_clients(self, stop: asyncio.Event) -> None:
        """Connect, waiting out a broker that is not up yet (back-off, never give up)."""
        assert self._consumer is not None and self._producer is not None
        for client in (self._producer, self._consumer):
            backoff = 0.2
            while not stop.is_set():
                try:
                    await client.start()
                except KafkaError as error:
                    metrics.CONSUMER_RETRIABLE_ERRORS.labels(self._group, "broker").inc()
                    log.warning("broker unreachable (%r); retrying in %.1fs", error, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, self._options.max_backoff_s)
                else:
                    break

    async def _loop(self, stop: asyncio.Event) -> None:
        backoff = 0.1
        while not stop.is_set():
            step = self._step(backoff)
            backoff = await unless_stopped(step, stop, self._options.stop_grace_s) or backoff

    async def _step(self, backoff: float) -> float:
        """One poll, or the recovery from its error; the back-off for the next error."""
        try:
            await self._poll_once()
        except OffsetConflict as conflict:
            metrics.CONSUMER_CONFLICTS.labels(self._group).inc()
            log.warning("offset conflict, re-seeking: %s", conflict)
            await self._reseek(list(self._positions))
            return backoff
        except RETRIABLE as error:
            metrics.CONSUMER_RETRIABLE_ERRORS.labels(self._group, error_kind(error)).inc()
            log.warning("retriable error, backing off %.1fs: %r", backoff, error)
            await asyncio.sleep(backoff)
            await self._reseek(list(self._positions))
            return min(backoff * 2, self._options.max_backoff_s)
        return 0.1

    async def _poll_once(self) -> None:
        if self._relaying is not None and self._relaying.done():
            self._relaying.result()  # the relay met an error it cannot retry: so do we
        if not self._settled.is_set():
            # Bounded, so that a stop request is seen while no partition is assigned yet.
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._settled.wait(), self._options.poll_timeout_ms / 1000)
            return
        assert self._consumer is not None
        batch = await self._fill_batch()
        if self._positions.logs_behind(self._consumer):
            await self._settle()
            await self._positions.reread_logs_behind(self._consumer)
        try:
            opened = await self._open_batch(batch) if batch else None
        except BaseException as error:
            try:
                await self._settle()
            except Exception as earlier:  # the batch ahead failed first: its error counts
                raise earlier from error
            raise
        try:
            await self._settle()  # the batch ahead's outcome: this one is written after it
        except BaseException:
            if opened is not None:
                await opened.session.close()  # computed on a state never committed
            raise
        if opened is not None:
            self._in_flight = _InFlight(opened, asyncio.create_task(self._finish_batch(opened)))
            if not self._options.pipelined:
                await self._settle()
        self._export_lag()

    async def _settle(self) -> None:
        """Wait for the batch in flight to commit; its error is raised here."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await in_flight.done

    async def _drop_in_flight(self) -> None:
        """On the way out: the batch in flight gets the stop grace to commit, then is
        cancelled (its transaction rolls back; its records are read again next time)."""
        in_flight, self._in_flight = self._in_flight, None
        if in_flight is not None:
            await finish_within(in_flight.done, self._options.stop_grace_s, "last batch")

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

    async def _open_batch(self, batch: dict[TopicPartition, list[Any]]) -> _OpenBatch | None:
        """Decode, open the batch's transaction, claim its ids and prepare its effects."""
        started = time.perf_counter()
        unseen = self._positions.unseen(batch)
        if not unseen:
            return None
        # A rebalance may revoke partitions while the transaction awaits: keep the positions
        # this batch was read from (the offset compare-and-set fences a stale one). Behind
        # a batch in flight, that is where the batch ahead leaves them.
        ahead = self._in_flight.batch.moves if self._in_flight else {}
        moves = {
            key: (ahead[key][1] if key in ahead else self._positions.get(key), m[-1].offset + 1)
            for key, m in unseen.items()
        }
        records, outbox = self._decode(unseen)
        relevant = self._options.relevant
        if relevant is not None:
            kept = [r for r in records if relevant(r.event)]
            metrics.CONSUMER_EVENTS.labels(self._group, "passed_over").inc(len(records) - len(kept))
            records = kept
        session = self._sessions()
        try:
            await session.begin()
            transaction_started = time.perf_counter()
            fresh = await self._drop_applied(session, records) if records else []
            prepared = await self._prepare(session, fresh) if fresh else None
        except BaseException:
            await session.close()
            raise
        return _OpenBatch(
            session, unseen, moves, fresh, outbox, prepared, len(records), started,
            transaction_started,
        )  # fmt: skip

    async def _prepare(self, session: AsyncSession, fresh: list[InboundRecord]) -> PreparedBatch:
        handler = self._handler
        if not isinstance(handler, TwoPhaseHandler):
            return Deferred(handler, fresh)
        # A batch ahead with nothing prepared (all duplicates) moves offsets only.
        in_flight = self._in_flight
        ahead = None
        if in_flight is not None and in_flight.batch.prepared is not None:
            ahead = Ahead(in_flight.batch.prepared, in_flight.done)
        return await handler.prepare(session, fresh, ahead)

    async def _finish_batch(self, batch: _OpenBatch) -> None:
        """Write and commit: the task the next batch's preparation overlaps. One
        transaction for the whole batch: one state load and one write, whatever the number
        of partitions in it."""
        session = batch.session
        try:
            outbound = await batch.prepared.write(session) if batch.prepared else []
            attribute_outputs(outbound, batch.fresh, batch.outbox)
            await offsets.enqueue_all(session, self._group, batch.outbox)
            await offsets.advance_offsets(session, self._group, batch.moves)
            await self._maybe_prune(session)
            await session.commit()
        finally:
            await session.close()
        committed_at = time.perf_counter()
        if any(batch.outbox.values()):
            self._relay.kick()
        advanced = {key: next_offset for key, (_, next_offset) in batch.moves.items()}
        self._positions.advance(advanced)
        await self._commit_to_kafka(advanced)
        self._observe_batch(batch.unseen, batch.fresh, committed_at - batch.transaction_started)
        metrics.CONSUMER_BATCH_SECONDS.labels(self._group).observe(committed_at - batch.started)
        metrics.CONSUMER_BATCH_SIZE.labels(self._group).observe(batch.size)
        self.status.last_batch_at = time.time()

    def _decode(
        self, unseen: dict[TopicPartitionKey, list[Any]]
    ) -> tuple[list[InboundRecord], dict[TopicPartitionKey, list[OutboundRecord]]]:
        """Events to apply, and per partition the dead letters queued in its outbox."""
        records: list[InboundRecord] = []
        outbox: dict[TopicPartitionKey, list[OutboundRecord]] = {}
        for key, messages in unseen.items():
            decoded, dead = decode_records(messages, key)
            records += decoded
            outbox[key] = [letter.record for letter in dead]
            metrics.CONSUMER_EVENTS.labels(self._group, "dead_lettered").inc(len(dead))
            for letter in dead:
                metrics.CONSUMER_DEAD_LETTERED.labels(self._group, letter.reason_class).inc()
                log.warning("dead-lettered a record of %s/%d: %s", *key, letter.reason_class)
        return records, outbox

    def _observe_batch(
        self,
        unseen: dict[TopicPartitionKey, list[Any]],
        applied: list[InboundRecord],
        transaction_s: float,
    ) -> None:
        """Metrics and correlation logs of a committed batch (the event id follows an event
        from ingest to its effects)."""
        metrics.CONSUMER_TRANSACTION_SECONDS.labels(self._group).observe(transaction_s)
        metrics.CONSUMER_OFFSETS_COMMITTED.labels(self._group).inc(len(unseen))
        metrics.CONSUMER_EVENTS.labels(self._group, "applied").inc(len(applied))
        for (topic, partition), messages in unseen.items():
            metrics.CONSUMER_CONSUMED.labels(self._group, topic).inc(len(messages))
            self._lag.processed((topic, partition), messages[-1].timestamp)
        if log.isEnabledFor(logging.DEBUG):
            for record in applied:
                extra = {"event_id": record.event.event_id, "group": self._group}
                log.debug("applied %s", record.event.type, extra=extra)

    async def _drop_applied(
        self, session: AsyncSession, records: list[InboundRecord]
    ) -> list[InboundRecord]:
        """Events this group already applied (retries, re-publishes) are skipped, once.

        Claiming the ids (an insert that skips known ones) both finds the duplicates and
        records the new ids, in the batch's transaction: a rollback forgets the claim.
        """
        claimed = await offsets.claim_new(session, self._group, [r.event.event_id for r in records])
        fresh: list[InboundRecord] = []
        for record in records:
            if record.event.event_id not in claimed:
                metrics.CONSUMER_EVENTS.labels(self._group, "duplicate").inc()
                continue
            claimed.discard(record.event.event_id)  # a repeat within the batch is a duplicate
            fresh.append(record)
        return fresh

    async def _maybe_prune(self, session: AsyncSession) -> None:
        if time.monotonic() >= self._next_prune:
            self._next_prune = time.monotonic() + self._options.prune_every_s
            retention = timedelta(hours=self._settings.consumer_dedup_retention_hours)
            await offsets.forget_applied_before(session, self._group, retention)

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
        self._relay.kick()  # their previous owner may have left rows in the outbox

    def on_revoked(self, revoked: set[TopicPartition]) -> None:
        self._settled.clear()
        keys = [(tp.topic, tp.partition) for tp in revoked]
        self._positions.forget(keys)
        for key in keys:
            self._lag.forget(key)
        self.status.assigned = set(self._positions)

    async def _reseek(self, partitions: list[TopicPartitionKey]) -> None:
        assert self._consumer is not None
        await self._positions.reseek(self._consumer, partitions)

    def _export_lag(self) -> None:
        consumer = self._consumer
        assert consumer is not None

        def highwater(key: TopicPartitionKey) -> int | None:
            mark: int | None = consumer.highwater(TopicPartition(*key))
            return mark

        self._lag.export(self._positions, highwater)


class _Rebalance(ConsumerRebalanceListener):  # type: ignore[misc]
    def __init__(self, shell: ConsumerShell) -> None:
        self._shell = shell

    async def on_partitions_revoked(self, revoked: set[TopicPartition]) -> None:
        self._shell.on_revoked(revoked)

    async def on_partitions_assigned(self, assigned: set[TopicPartition]) -> None:
        await self._shell.on_assigned(assigned)
