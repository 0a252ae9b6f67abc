"""Records from the wire: decoded into events, or turned into dead letters with a reason.

The dead letter's header carries the full reason (field and message); metrics carry only
its *class* (``reason_class``), a bounded set.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pydantic import ValidationError

from schemas import topics
from schemas.events import Event, decode_event
from services.kit.offsets import OutboundRecord, TopicPartitionKey

UNDECODABLE = "undecodable"
UNKNOWN_TYPE = "unknown_type"
INVALID_FIELD = "invalid_field"
REASON_CLASSES = (UNDECODABLE, UNKNOWN_TYPE, INVALID_FIELD)

_UNDECODABLE_ERRORS = frozenset({"json_invalid", "json_type"})
_UNKNOWN_TYPE_ERRORS = frozenset({"union_tag_invalid", "union_tag_not_found"})


@dataclass(frozen=True, slots=True)
class InboundRecord:
    topic: str
    partition: int
    offset: int
    event: Event
    timestamp_ms: int | None = None


@dataclass(frozen=True, slots=True)
class DeadLetter:
    record: OutboundRecord
    reason_class: str


def decode_records(
    messages: list[Any], key: TopicPartitionKey
) -> tuple[list[InboundRecord], list[DeadLetter]]:
    records: list[InboundRecord] = []
    dead: list[DeadLetter] = []
    for message in messages:
        try:
            event = decode_event(message.value or b"")
        except ValidationError as error:
            record = dead_letter(message, key, _reason(error))
            dead.append(DeadLetter(record, reason_class(error)))
            continue
        timestamp = getattr(message, "timestamp", None)
        records.append(InboundRecord(key[0], key[1], message.offset, event, timestamp))
    return records, dead


def attribute_outputs(
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


def reason_class(error: ValidationError) -> str:
    """A bounded label for a validation failure: the metric's ``reason``."""
    kind = error.errors()[0].get("type", "")
    if kind in _UNDECODABLE_ERRORS:
        return UNDECODABLE
    if kind in _UNKNOWN_TYPE_ERRORS:
        return UNKNOWN_TYPE
    return INVALID_FIELD


def _reason(error: ValidationError) -> str:
    first = error.errors()[0]
    where = ".".join(str(part) for part in first.get("loc", ()))
    return f"{where or 'body'}: {first.get('msg', 'invalid')}"[:1024]
