"""Consumer bookkeeping in the database: stored offsets, applied event ids, the outbox.

Every function takes the caller's session and never commits: the consumer shell commits
them together with the derived state, in one transaction.
"""

from __future__ import annotations

import base64
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete, select, text, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.dialect import insert_new_rows, upsert_statement
from services.kit.tables import consumer_offsets, outbox, processed_events


class OffsetConflict(Exception):
    """Another group member advanced a partition's stored offset: our batch is stale."""


@dataclass(frozen=True, slots=True)
class OutboundRecord:
    topic: str
    key: bytes | None
    value: bytes
    headers: tuple[tuple[str, bytes], ...] = ()


@dataclass(frozen=True, slots=True)
class PendingRecord:
    id: int
    record: OutboundRecord


TopicPartitionKey = tuple[str, int]


async def load_offsets(
    session: AsyncSession, group_id: str, partitions: Iterable[TopicPartitionKey]
) -> dict[TopicPartitionKey, int]:
    wanted = list(partitions)
    if not wanted:
        return {}
    rows = await session.execute(
        select(
            consumer_offsets.c.topic, consumer_offsets.c.partition, consumer_offsets.c.next_offset
        )
        .where(consumer_offsets.c.group_id == group_id)
        .where(tuple_(consumer_offsets.c.topic, consumer_offsets.c.partition).in_(wanted))
    )
    return {(topic, partition): offset for topic, partition, offset in rows}


async def advance_offset(
    session: AsyncSession,
    group_id: str,
    partition: TopicPartitionKey,
    expected: int | None,
    next_offset: int,
) -> None:
    """Compare-and-set the stored offset; ``expected=None`` means no row exists yet.

    This fences zombies: a member that lost the partition in a rebalance finds the row
    moved on and rolls back instead of applying the same records twice.
    """
    topic, number = partition
    now = datetime.now(UTC)
    if expected is None:
        inserted = await session.execute(
            upsert_statement(session, consumer_offsets)
            .values(
                group_id=group_id,
                topic=topic,
                partition=number,
                next_offset=next_offset,
                updated_at=now,
            )
            .on_conflict_do_nothing()
        )
        if inserted.rowcount != 1:  # type: ignore[attr-defined]
            raise OffsetConflict(f"{topic}[{number}] was claimed by another member")
        return
    result = await session.execute(
        update(consumer_offsets)
        .where(consumer_offsets.c.group_id == group_id)
        .where(consumer_offsets.c.topic == topic)
        .where(consumer_offsets.c.partition == number)
        .where(consumer_offsets.c.next_offset == expected)
        .values(next_offset=next_offset, updated_at=now)
    )
    if result.rowcount != 1:  # type: ignore[attr-defined]
        raise OffsetConflict(f"{topic}[{number}] moved past {expected}")


async def advance_offsets(
    session: AsyncSession,
    group_id: str,
    moves: Mapping[TopicPartitionKey, tuple[int | None, int]],
) -> None:
    """``advance_offset`` for every partition of a batch: ``moves`` maps each to its
    ``(expected, next_offset)``. On PostgreSQL the partitions with a stored row move in one
    compare-and-set statement (a batch spans up to every partition of its topics, and a
    statement per partition cost more than the batch's own writes at moderate rates)."""
    stored = {key: move for key, move in moves.items() if move[0] is not None}
    for key, (expected, next_offset) in moves.items():
        if expected is None:
            await advance_offset(session, group_id, key, None, next_offset)
    if len(stored) < 2 or session.get_bind().dialect.name != "postgresql":
        for key, (expected, next_offset) in stored.items():
            await advance_offset(session, group_id, key, expected, next_offset)
        return
    keys = list(stored)
    moved = await session.execute(
        _ADVANCE_ARRAY,
        {
            "group_id": group_id,
            "topics": [topic for topic, _ in keys],
            "partitions": [number for _, number in keys],
            "expected": [stored[key][0] for key in keys],
            "next_offsets": [stored[key][1] for key in keys],
            "now": datetime.now(UTC),
        },
    )
    stale = set(keys) - {(topic, number) for topic, number in moved}
    if stale:
        topic, number = min(stale)
        raise OffsetConflict(f"{topic}[{number}] moved past {stored[(topic, number)][0]}")


_ADVANCE_ARRAY = text(
    "UPDATE consumer_offsets AS stored SET next_offset = moved.next_offset, updated_at = :now"
    " FROM unnest(CAST(:topics AS VARCHAR(255)[]), CAST(:partitions AS INTEGER[]),"
    " CAST(:expected AS BIGINT[]), CAST(:next_offsets AS BIGINT[]))"
    " AS moved(topic, partition, expected, next_offset)"
    " WHERE stored.group_id = :group_id AND stored.topic = moved.topic"
    " AND stored.partition = moved.partition AND stored.next_offset = moved.expected"
    " RETURNING stored.topic, stored.partition"
)

_CLAIM_ARRAY = text(
    "INSERT INTO processed_events (group_id, event_id, processed_at)"
    " SELECT :group_id, event_id, :now FROM unnest(CAST(:event_ids AS VARCHAR(128)[])) AS event_id"
    " ON CONFLICT DO NOTHING RETURNING event_id"
)


async def claim_new(session: AsyncSession, group_id: str, event_ids: Sequence[str]) -> set[str]:
    """Record the ids this group has not applied yet and return exactly those.

    One ``INSERT ... ON CONFLICT DO NOTHING RETURNING``: the primary key finds the known
    ids whatever the table's size, where a lookup query's cached plan may not.
    """
    unique = list(dict.fromkeys(event_ids))
    if not unique:
        return set()
    now = datetime.now(UTC)
    if session.get_bind().dialect.name == "postgresql":  # one statement over an array
        claimed = await session.execute(
            _CLAIM_ARRAY, {"group_id": group_id, "event_ids": unique, "now": now}
        )
        return set(claimed.scalars())
    statement = (
        upsert_statement(session, processed_events)
        .on_conflict_do_nothing()
        .returning(processed_events.c.event_id)
    )
    rows = await session.execute(
        statement, [{"group_id": group_id, "event_id": e, "processed_at": now} for e in unique]
    )
    return set(rows.scalars())


async def forget_all_offsets(session: AsyncSession) -> int:
    """Drop every group's stored offsets (their logs are gone: a new, empty broker), so
    consumers read the new topics from their start. Returns how many were stored."""
    result = await session.execute(delete(consumer_offsets))
    return int(result.rowcount)  # type: ignore[attr-defined]


async def forget_applied_before(session: AsyncSession, group_id: str, retention: timedelta) -> None:
    """Event ids older than the retention can no longer arrive as duplicates worth catching."""
    cutoff = datetime.now(UTC) - retention
    await session.execute(
        delete(processed_events)
        .where(processed_events.c.group_id == group_id)
        .where(processed_events.c.processed_at < cutoff)
    )


async def enqueue_all(
    session: AsyncSession,
    group_id: str,
    queued: Mapping[TopicPartitionKey, Sequence[OutboundRecord]],
) -> None:
    """Queue the records of every source partition of a batch, in one insert (relayed in
    this order: sources in the mapping's order, each source's records in order)."""
    await insert_new_rows(
        session,
        outbox,
        [
            {
                "group_id": group_id,
                "source_topic": source[0],
                "source_partition": source[1],
                "topic": r.topic,
                "key": r.key,
                "value": r.value,
                "headers": [[name, base64.b64encode(value).decode()] for name, value in r.headers],
            }
            for source, records in queued.items()
            for r in records
        ],
    )


async def pending(
    session: AsyncSession, group_id: str, sources: Iterable[TopicPartitionKey], limit: int
) -> list[PendingRecord]:
    wanted = list(sources)
    if not wanted:
        return []
    rows = await session.execute(
        select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.value, outbox.c.headers)
        .where(outbox.c.group_id == group_id)
        .where(tuple_(outbox.c.source_topic, outbox.c.source_partition).in_(wanted))
        .order_by(outbox.c.id)
        .limit(limit)
    )
    return [
        PendingRecord(
            id=row_id,
            record=OutboundRecord(
                topic=topic,
                key=key,
                value=value,
                headers=tuple((name, base64.b64decode(text)) for name, text in headers),
            ),
        )
        for row_id, topic, key, value, headers in rows
    ]


async def delete_published(session: AsyncSession, ids: Sequence[int]) -> None:
    for chunk in _chunks(list(ids), 500):
        await session.execute(delete(outbox).where(outbox.c.id.in_(chunk)))


def _chunks(items: list[str] | list[int], size: int) -> Iterable[list[str] | list[int]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]
