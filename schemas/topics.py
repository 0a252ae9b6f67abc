"""Topic names, partition counts and keys: defined here and nowhere else.

Every topic is keyed by account (its domain, or ``anon:<visitor id>`` until the account is
known), so that all events of one account are on one partition, in order.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from aiokafka.partitioner import murmur2


@dataclass(frozen=True, slots=True)
class Topic:
    name: str
    partitions: int
    description: str


EVENTS = Topic("abm.events.v1", 12, "Inbound facts from ingest and the API's writes.")
SURGES = Topic("abm.surges.v1", 12, "SurgeStarted / SurgeEnded emitted by intent.")
CHANGES = Topic("abm.changes.v1", 12, "StageChanged / TierChanged emitted by funnel.")
DEAD_LETTER = Topic("abm.deadletter.v1", 3, "Undecodable or rejected input, with the reason.")

ALL_TOPICS: tuple[Topic, ...] = (EVENTS, SURGES, CHANGES, DEAD_LETTER)

# Consumer groups, one per consuming service.
INTENT_GROUP = "abm-intent"
FUNNEL_GROUP = "abm-funnel"
STITCH_GROUP = "abm-stitch"

# Header names on dead-lettered records.
HEADER_REASON = "abm-dlq-reason"
HEADER_SOURCE = "abm-dlq-source"
HEADER_ORIGINAL_TOPIC = "abm-dlq-topic"
HEADER_ORIGINAL_PARTITION = "abm-dlq-partition"
HEADER_ORIGINAL_OFFSET = "abm-dlq-offset"
HEADER_EVENT_TYPE = "abm-type"


def partition_key(key: str) -> bytes:
    """Kafka record key for an account key (see ``schemas.envelope.account_key``)."""
    return key.encode()


def partition_of(key: str, partitions: int) -> int:
    """The partition Kafka's default partitioner (murmur2, as in the Java client and
    aiokafka) puts ``key`` on: lets a consumer tell which accounts a partition holds."""
    return key_hash(partition_key(key)) % partitions


@lru_cache(maxsize=65_536)
def key_hash(key: bytes) -> int:
    """Kafka's default partitioner's hash of a record key (positive murmur2). Memoised:
    aiokafka's murmur2 is pure Python (about 5 µs) and the same accounts recur."""
    hashed: int = murmur2(key)
    return hashed & 0x7FFFFFFF
