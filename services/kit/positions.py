"""Where a consumer group member stands in each partition it owns.

A position is the next offset stored in the database with the state derived from the
records before it (None: none stored yet, the partition is read from its beginning).
The database, not Kafka, is the source of truth: on assignment, after an offset conflict
or an error, the member seeks back to what is stored (``reseek``).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator, Mapping
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit import metrics, offsets
from services.kit.offsets import TopicPartitionKey

log = logging.getLogger(__name__)


class StoredPositions(Mapping[TopicPartitionKey, int | None]):
    """The owned partitions' stored positions, read as a mapping."""

    def __init__(self, group: str, sessions: async_sessionmaker[AsyncSession]) -> None:
        self._group = group
        self._sessions = sessions
        self._at: dict[TopicPartitionKey, int | None] = {}

    def __getitem__(self, key: TopicPartitionKey) -> int | None:
        return self._at[key]

    def __iter__(self) -> Iterator[TopicPartitionKey]:
        return iter(self._at)

    def __len__(self) -> int:
        return len(self._at)

    def unseen(
        self, batch: Mapping[TopicPartition, list[Any]]
    ) -> dict[TopicPartitionKey, list[Any]]:
        """Messages at or past the stored position of partitions we still own."""
        unseen: dict[TopicPartitionKey, list[Any]] = {}
        for tp, messages in batch.items():
            key = (tp.topic, tp.partition)
            if key not in self._at:
                continue  # revoked while the batch was in flight
            position = self._at[key] or 0
            fresh = [m for m in messages if m.offset >= position]
            if fresh:
                unseen[key] = fresh
        return unseen

    def advance(self, stored: Mapping[TopicPartitionKey, int]) -> None:
        """These positions were committed; partitions revoked meanwhile stay forgotten."""
        self._at.update({key: at for key, at in stored.items() if key in self._at})

    def forget(self, revoked: Iterable[TopicPartitionKey]) -> None:
        for key in revoked:
            self._at.pop(key, None)

    async def reseek(self, consumer: AIOKafkaConsumer, partitions: list[TopicPartitionKey]) -> None:
        """Seek each partition to the offset stored in the database (or its beginning)."""
        async with self._sessions() as session:
            stored = await offsets.load_offsets(session, self._group, partitions)
        for key in partitions:
            tp = TopicPartition(*key)
            self._at[key] = stored.get(key)
            if key in stored:
                consumer.seek(tp, stored[key])
            else:
                await consumer.seek_to_beginning(tp)

    def logs_behind(self, consumer: AIOKafkaConsumer) -> bool:
        """Some partition's log ends before our stored offset (see ``reread_logs_behind``)."""
        return bool(self._behind(consumer))

    def _behind(self, consumer: AIOKafkaConsumer) -> dict[TopicPartitionKey, tuple[int, int]]:
        """Per partition whose log ends before our stored offset: (stored offset, end)."""
        behind: dict[TopicPartitionKey, tuple[int, int]] = {}
        for key, position in self._at.items():
            end: int | None = consumer.highwater(TopicPartition(*key))
            if position is not None and end is not None and end < position:
                behind[key] = (position, end)
        return behind

    async def reread_logs_behind(self, consumer: AIOKafkaConsumer) -> None:
        """Partitions whose log now ends before our stored offset are read again from
        their start.

        The log was recreated, or its broker lost data (the embedded broker keeps none
        across restarts; Kafka after an unclean leader election). Waiting at the stored
        offset would silently skip every record below it as they arrive; reading again is
        safe, as the events already applied are skipped by id.
        """
        behind = self._behind(consumer)
        if not behind:
            return
        async with self._sessions() as session, session.begin():
            moves = {key: (position, 0) for key, (position, _) in behind.items()}
            await offsets.advance_offsets(session, self._group, moves)
        for key, (position, end) in behind.items():
            if key not in self._at:
                continue  # revoked meanwhile: its new owner reads the stored 0
            log.error(
                "%s[%d] ends at offset %d, before the stored offset %d: the topic was "
                "recreated or its broker lost data; reading it again from its start",
                *key, end, position,
            )  # fmt: skip
            metrics.CONSUMER_LOG_RESETS.labels(self._group).inc()
            self._at[key] = 0
            await consumer.seek_to_beginning(TopicPartition(*key))
