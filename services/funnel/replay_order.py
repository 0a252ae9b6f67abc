"""The order `abm replay` applies records in: one total order of the events and surges
topics, a function of the records alone, whatever order the fetches delivered them in.

The live funnel consumes two topics: ``abm.events.v1`` and ``abm.surges.v1``, whose
surges intent derives from the events. Each partition is applied in offset order (as the
consumer did: an account's events, and its surges, keep their order), and the partitions
are merged by the ``received_at`` of the record at their head, then events before
surges, then topic name and partition number. So a surge (which carries its cause's
``received_at``) comes right after the event that caused it: the run of a consumer to
which intent answered without lag.

Why ``received_at`` and not the alternatives:

- the broker's timestamp is not in an exported event file (values only), and is the
  re-publication time for records published again (intent rebuilt, dead letters fixed):
  its surges would all sort after every event. ``received_at`` is in the value and a
  derived event copies its cause's, so a re-run gives the same order;
- ``occurred_at`` is the source's claim (backfills, offline clients, CRM imports):
  sorting by it would apply late events on time, a history the live consumer never saw.
  The pure core handles lateness itself (an account's clock never goes back).
  ``received_at`` is stamped on receipt, just before the append: it follows the topic.

An exported file (one event per line) gives the same order as the topics for the same
records when each partition's records are in offset order in it (any interleaving of the
partitions: an export of each topic, concatenated, or this module's own order): each line
is put on the topic and partition it was produced to (see ``locate``).
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime

from pydantic import ValidationError

from schemas import topics
from schemas.events import (
    ClockTicked,
    Event,
    StageChanged,
    SurgeEnded,
    SurgeStarted,
    TierChanged,
    decode_event,
)

Source = tuple[str, int]  # (topic, partition)
_UNDECODABLE: Source = ("", -1)  # file lines that name no topic; skipped by replay anyway
_RANK = {topics.EVENTS.name: 0, topics.SURGES.name: 1}
_FIRST = datetime.min.replace(tzinfo=UTC)


@dataclass(frozen=True, slots=True)
class Record:
    """One record as fetched: where it is on the topics, and its value (an encoded event)."""

    topic: str
    partition: int
    offset: int
    value: bytes


def in_replay_order(records: Iterable[Record]) -> Iterator[Event | bytes]:
    """``records``, in any order, merged into replay order (see the module docstring).

    Each record is decoded once; an undecodable one is yielded as its raw bytes (for
    replay to count) as soon as it heads its partition. A record fetched twice (same
    topic, partition and offset) is yielded once.
    """
    return (raw if event is None else event for raw, event in _merged(records))


def values_in_replay_order(records: Iterable[Record]) -> list[bytes]:
    """``in_replay_order``, as the records' values."""
    return [raw for raw, _ in _merged(records)]


def _merged(records: Iterable[Record]) -> Iterator[tuple[bytes, Event | None]]:
    partitions: dict[Source, dict[int, bytes]] = {}
    for record in records:
        partitions.setdefault((record.topic, record.partition), {})[record.offset] = record.value
    return _merge(
        {source: [values[o] for o in sorted(values)] for source, values in partitions.items()}
    )


def _merge(partitions: dict[Source, list[bytes]]) -> Iterator[tuple[bytes, Event | None]]:
    """Each partition's values, in their order, merged by the key of their heads."""
    heads = [_head(source, values, 0) for source, values in partitions.items()]
    heapq.heapify(heads)
    while heads:
        key, position, event = heads[0]
        source = (key[2], key[3])
        values = partitions[source]
        yield values[position], event
        if position + 1 < len(values):
            heapq.heapreplace(heads, _head(source, values, position + 1))
        else:
            heapq.heappop(heads)


def locate(value: bytes, offset: int) -> Record:
    """The record a line of an exported file was on: events are keyed by account on their
    topic with Kafka's default partitioner, ticks name their partition; the line's number
    stands for the offset."""
    try:
        event = decode_event(value)
    except ValidationError:
        return Record(*_UNDECODABLE, offset, value)
    if isinstance(event, ClockTicked):
        return Record(topics.EVENTS.name, event.partition, offset, value)
    topic = topics.EVENTS
    if isinstance(event, SurgeStarted | SurgeEnded):
        topic = topics.SURGES
    elif isinstance(event, StageChanged | TierChanged):
        topic = topics.CHANGES
    partition = topics.partition_of(event.account_key, topic.partitions)
    return Record(topic.name, partition, offset, value)


def file_records(lines: Iterable[bytes]) -> Iterator[Record]:
    """The lines of an exported file as records (see ``locate``)."""
    for number, line in enumerate(lines):
        yield locate(line, number)


_Head = tuple[tuple[datetime, int, str, int], int, Event | None]


def _head(source: Source, values: list[bytes], position: int) -> _Head:
    """A partition's next record: its merge key (unique to the partition), its position
    and the event (None: undecodable, so it goes first, where it changes nothing)."""
    topic, partition = source
    try:
        event = decode_event(values[position])
    except ValidationError:
        return (_FIRST, -1, topic, partition), position, None
    return (event.received_at, _RANK.get(topic, len(_RANK)), topic, partition), position, event
