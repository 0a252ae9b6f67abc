"""Consumer lag per partition, in messages and in seconds.

Messages: the high-water mark the consumer's last fetch reported minus the next offset to
process (``AIOKafkaConsumer.highwater``; never ``end_offsets``, which the embedded broker
answers wrongly). Seconds: while records wait, wall clock minus the broker timestamp of
the last processed record, i.e. how far behind real time the state is; 0 when caught up.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Mapping

from services.kit import metrics
from services.kit.offsets import TopicPartitionKey

Highwater = Callable[[TopicPartitionKey], int | None]


class PartitionLag:
    def __init__(self, group: str, clock: Callable[[], float] = time.time) -> None:
        self._group = group
        self._clock = clock
        self._last_timestamp_s: dict[TopicPartitionKey, float] = {}

    def processed(self, key: TopicPartitionKey, timestamp_ms: int | None) -> None:
        """The last record of ``key`` in a committed batch had this broker timestamp."""
        if timestamp_ms is not None and timestamp_ms > 0:
            self._last_timestamp_s[key] = timestamp_ms / 1000

    def export(
        self, positions: Mapping[TopicPartitionKey, int | None], highwater: Highwater
    ) -> None:
        now = self._clock()
        for key, position in positions.items():
            mark = highwater(key)
            if mark is None:
                continue
            lag = max(0, mark - (position or 0))
            labels = (self._group, key[0], str(key[1]))
            metrics.CONSUMER_LAG.labels(*labels).set(lag)
            seconds = self.seconds_behind(key, lag, now)
            if seconds is not None:
                metrics.CONSUMER_LAG_SECONDS.labels(*labels).set(seconds)

    def seconds_behind(self, key: TopicPartitionKey, lag: int, now: float) -> float | None:
        if lag == 0:
            return 0.0
        last = self._last_timestamp_s.get(key)
        return None if last is None else max(0.0, now - last)

    def forget(self, key: TopicPartitionKey) -> None:
        """A revoked partition: its owner exports it now."""
        self._last_timestamp_s.pop(key, None)
        labels = (self._group, key[0], str(key[1]))
        for gauge in (metrics.CONSUMER_LAG, metrics.CONSUMER_LAG_SECONDS):
            with contextlib.suppress(KeyError):
                gauge.remove(*labels)
