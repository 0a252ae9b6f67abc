"""Intent metrics: how fresh each intent source is.

``abm_intent_source_newest_signal_timestamp_seconds{source}`` is the event time of the
newest signal applied per source: ``time() - value`` is the source's age, so a provider
whose feed stopped is visible (and alertable). The label is bounded: the sources named in
``IntentConfig.source_weights`` (``web`` for first-party traffic), every other ``other``.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from prometheus_client import Gauge

from schemas.events import Event
from services.intent.config import IntentConfig
from services.intent.processing import (
    Contribution,
    contributions,
    detector_time,
    source_label,
    source_of,
)

SOURCE_NEWEST_SIGNAL = Gauge(
    "abm_intent_source_newest_signal_timestamp_seconds",
    "Event time of the newest intent signal applied, per source (configured names, else 'other').",
    ["source"],
    multiprocess_mode="livemax",
)


def newest_by_source(
    events: Sequence[Event],
    config: IntentConfig,
    contributed: Sequence[list[Contribution]] | None = None,
) -> dict[str, datetime]:
    """Pure: the newest detector time per source label among the events that count
    (``contributed``: their ``contributions``, when already worked out)."""
    newest: dict[str, datetime] = {}
    if contributed is None:
        contributed = contributions(events, config)
    for event, pairs in zip(events, contributed, strict=True):
        if not pairs:
            continue
        label = source_label(source_of(event), config)
        at = detector_time(event)
        if label not in newest or at > newest[label]:
            newest[label] = at
    return newest


class SourceFreshness:
    """Keeps the gauge at the maximum seen per label (batches may arrive out of order)."""

    def __init__(self) -> None:
        self._seen: dict[str, float] = {}

    def observe(
        self,
        events: Sequence[Event],
        config: IntentConfig,
        contributed: Sequence[list[Contribution]] | None = None,
    ) -> None:
        for label, at in newest_by_source(events, config, contributed).items():
            stamp = at.timestamp()
            if stamp > self._seen.get(label, float("-inf")):
                self._seen[label] = stamp
                SOURCE_NEWEST_SIGNAL.labels(label).set(stamp)
