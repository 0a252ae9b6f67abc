"""What ingest records about a published request: metrics and correlation logs.

The event id is the correlation id: ingest logs it with the request id (at DEBUG), the
consumers log it when they apply the event, and the effects carry it as their cause.
"""

from __future__ import annotations

import logging
import math
from collections import Counter

from schemas import topics
from services.ingest.collect import Collected
from services.kit import metrics

log = logging.getLogger(__name__)

TOO_LARGE = "too_large"
UNSUPPORTED_TYPE = "unsupported_type"
INVALID_FIELD = "invalid_field"
REASON_CLASSES = (TOO_LARGE, UNSUPPORTED_TYPE, INVALID_FIELD)

# Newest event time per event type seen by this process (bounded: one entry per type), so
# that an older batch arriving late does not move the gauge back.
_NEWEST: dict[str, float] = {}


# The routes whose events can be bot traffic (those that read a user agent); at 0 from start.
BOT_ROUTES = ("/v1/batch", "/v1/t", "/p.gif", "/com.snowplowanalytics.snowplow/tp2", "/i")


def start_series() -> None:
    metrics.start_ingest_series((topics.EVENTS.name, topics.DEAD_LETTER.name), REASON_CLASSES)
    for route in BOT_ROUTES:
        metrics.INGEST_BOT_EVENTS.labels(route)


def reason_class(reason: str) -> str:
    """A bounded label for a rejection ``"<field>: <reason>"`` (the dead letter's header)."""
    field, _, text = reason.partition(": ")
    if text.startswith("larger than"):
        return TOO_LARGE
    if field == "type":
        return UNSUPPORTED_TYPE
    return INVALID_FIELD


def observe_published(collected: Collected, request_id: str, route: str = "other") -> None:
    """The broker acknowledged every record of ``collected``, received on ``route``.

    Counts are summed per label first (plain dicts: a pixel hit pays this per event).
    """
    newest: dict[str, float] = {}
    accepted: dict[str, int] = {}
    bots = 0
    debug = log.isEnabledFor(logging.DEBUG)
    for event in collected.events:
        kind = event.type
        accepted[kind] = accepted.get(kind, 0) + 1
        bots += event.is_bot
        occurred = event.occurred_at.timestamp()
        if occurred > newest.get(kind, -math.inf):
            newest[kind] = occurred
        if debug:
            extra = {"event_id": event.event_id, "request_id": request_id, "type": kind}
            log.debug("accepted %s", kind, extra=extra)
    for event_type, count in accepted.items():
        metrics.labelled(metrics.INGEST_EVENTS, event_type, "accepted").inc(count)
    for event_type, timestamp in newest.items():
        if timestamp > _NEWEST.get(event_type, 0.0):
            _NEWEST[event_type] = timestamp
            metrics.labelled(metrics.INGEST_NEWEST_EVENT, event_type).set(timestamp)
    if collected.dead:
        classes = Counter(reason_class(reason) for _, reason, _ in collected.dead)
        for reason, count in classes.items():
            metrics.labelled(metrics.INGEST_DEAD_LETTERED, reason).inc(count)
        metrics.labelled(metrics.INGEST_PRODUCED, topics.DEAD_LETTER.name).inc(len(collected.dead))
    if bots:
        metrics.labelled(metrics.INGEST_BOT_EVENTS, route).inc(bots)
    metrics.labelled(metrics.INGEST_PRODUCED, topics.EVENTS.name).inc(len(collected.events))
    if debug:
        log.debug(
            "request %s: %d accepted, %d dead-lettered",
            request_id,
            len(collected.events),
            len(collected.dead),
            extra={"request_id": request_id},
        )
