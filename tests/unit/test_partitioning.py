"""Our producers' partitioner and ``partition_of`` place keys exactly where Kafka's default
partitioner does: consumers rely on it to tell which accounts a partition holds."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner

from schemas import topics
from services.kit.kafka import keyed_partitioner


def test_keys_land_where_the_default_partitioner_puts_them() -> None:
    default = DefaultPartitioner()
    keys = [f"account-{n}.com" for n in range(2000)] + ["", "é.example", "~population/3"]
    for count in (1, 3, 12, 50):
        partitions = list(range(count))
        for key in keys:
            expected = default(key.encode(), partitions, partitions)
            assert keyed_partitioner(key.encode(), partitions, partitions) == expected
            assert topics.partition_of(key, count) == expected


def test_keyless_records_go_to_an_available_partition() -> None:
    for _ in range(50):
        assert keyed_partitioner(None, [0, 1, 2, 3], [2, 3]) in (2, 3)
        assert keyed_partitioner(None, [0, 1], []) in (0, 1)
