"""Turn one request's messages into events to produce and rejections to report."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from schemas.events import ContactIdentified, InboundEvent
from services.ingest.errors import RejectedMessage, reject_oversized
from services.ingest.identity import CONFIDENCE, REMEMBERED, RangeLookup, VisitorAccounts
from services.ingest.ip_privacy import scrub_message
from services.ingest.originals import Original
from services.ingest.segment import Received, to_event
from services.kit import metrics

Translate = Callable[[Mapping[str, Any]], Mapping[str, Any]]
Originals = Callable[[int], Original | None]  # a message's bytes as sent, by its index


@dataclass
class Collected:
    events: list[InboundEvent] = field(default_factory=list)
    rejected: list[dict[str, Any]] = field(default_factory=list)
    dead: list[tuple[bytes, str, str]] = field(default_factory=list)  # raw, reason, source
    ignored: int = 0
    duplicates: int = 0


def collect(
    messages: Sequence[Any],
    received: Received,
    visitors: VisitorAccounts,
    max_event_bytes: int,
    translate: Translate | None = None,
    ranges: RangeLookup | None = None,
    originals: Originals | None = None,
) -> Collected:
    """Map every message; a bad one is rejected alone, never the whole batch.

    ``translate`` turns another protocol's payload into a Segment message first (Snowplow);
    a rejection then dead-letters the payload as it was received, its IP addresses kept,
    truncated or dropped per the source's policy. ``ranges`` looks up company IP ranges.
    ``originals`` gives each message's bytes as sent (see ``dead_letter_bytes``).
    """
    result = Collected()
    seen: set[str] = set()
    for index, message in enumerate(messages):
        try:
            segment_message = _segment_message(message, max_event_bytes, translate)
            event = to_event(segment_message, received, visitors.get, ranges)
        except RejectedMessage as rejection:
            kept = scrub_message(message, received.ip_policy)
            original = originals(index) if originals else None
            reject(result, index, kept, original, rejection, received.source)
            continue
        if event is None:
            result.ignored += 1
            metrics.labelled(metrics.INGEST_EVENTS, "none", "ignored").inc()
        elif event.event_id in seen:
            result.duplicates += 1
            metrics.labelled(metrics.INGEST_EVENTS, event.type, "duplicate").inc()
        else:
            seen.add(event.event_id)
            result.events.append(event)
            remember_visitor(event, visitors, segment_message.get("userId"))
    count_resolutions(result.events)
    return result


def _segment_message(
    message: Any, max_event_bytes: int, translate: Translate | None
) -> Mapping[str, Any]:
    if not isinstance(message, Mapping):
        raise RejectedMessage("message", "must be a JSON object")
    reject_oversized(message, max_event_bytes, "message")
    return translate(message) if translate else message


def start_resolution_series() -> None:
    """Every provenance ingest can produce at 0, so that rates exist before the first."""
    for provenance in (*CONFIDENCE, "none"):
        metrics.INGEST_ACCOUNT_RESOLUTIONS.labels(provenance)


def count_resolutions(events: Sequence[InboundEvent]) -> None:
    """The accepted events by provenance: one metric lookup per provenance, which costs
    more than an event's share of the rest."""
    counts: dict[str, int] = {}
    for event in events:
        label = event.account_provenance or "none"
        counts[label] = counts.get(label, 0) + 1
    for provenance, count in counts.items():
        metrics.labelled(metrics.INGEST_ACCOUNT_RESOLUTIONS, provenance).inc(count)


def remember_visitor(event: InboundEvent, visitors: VisitorAccounts, user_id: Any = None) -> None:
    """What later events of the same visitor are attributed by: its anonymous id and, for a
    signed-in visitor, its user id (``user_id``, else a contact's own ``user_id``), since
    later calls may carry only the user id (see ``identity.resolve_account``)."""
    if not event.account or event.account_provenance not in REMEMBERED:
        return
    if event.type == "meeting_held":  # named by its attendees: who sent it is not one of them
        return
    anonymous_id = event.anonymous_id
    if anonymous_id:
        visitors.remember(anonymous_id, event.account)
    # Not getattr(event, "user_id", None): on the events without the field, pydantic's
    # __getattr__ builds and raises an AttributeError, a twentieth of ingest's CPU.
    if not user_id and isinstance(event, ContactIdentified):
        user_id = event.user_id
    if isinstance(user_id, str) and user_id and user_id != anonymous_id:
        visitors.remember(user_id, event.account)


def dead_letter_bytes(message: Any, original: Original | None) -> bytes:
    """What a rejected ``message`` is dead-lettered as: the bytes it was sent as, when they
    say exactly ``message``; else (an IP address truncated or dropped by the source's
    policy, a write key taken out, no original to hand) ``message`` encoded anew."""
    if original is not None and original[1] == message:
        return original[0]
    return json.dumps(message, default=str).encode()


def reject(
    result: Collected,
    index: int,
    message: Any,
    original: Original | None,
    rejection: RejectedMessage,
    source: str,
    id_keys: tuple[str, ...] = ("messageId", "eid"),
) -> None:
    """List ``message`` (the ``index``-th of the request) as rejected, under the first of
    its ``id_keys`` it has, and dead-letter it (see ``dead_letter_bytes``)."""
    message_id = None
    if isinstance(message, Mapping):
        message_id = next((message[k] for k in id_keys if message.get(k)), None)
    result.rejected.append(
        {
            "index": index,
            # A rejected message's id may be anything (found by the fuzzer: "eid": 1e-09).
            "messageId": message_id if isinstance(message_id, str) else None,
            "field": rejection.field,
            "reason": rejection.reason,
        }
    )
    raw = dead_letter_bytes(message, original)
    result.dead.append((raw, f"{rejection.field}: {rejection.reason}", source))
    metrics.labelled(metrics.INGEST_EVENTS, "invalid", "rejected").inc()
