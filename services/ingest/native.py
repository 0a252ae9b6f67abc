"""Our own event schemas sent directly (CRMs, server-side senders) -> events (pure).

Each item of ``POST /v1/events`` is one inbound event of ``schemas.events`` without the
fields we set: ``received_at`` (our clock) and ``source`` (the write key's owner); the
account's provenance and confidence are ours too. ``event_id`` is required: it is the
sender's idempotency key. Event time corrects the sender's clock skew with the body's
``sent_at`` exactly as the Segment API does (see ``segment.event_time``); the raw
``occurred_at`` and ``sent_at`` are kept as ``client_occurred_at`` and ``client_sent_at``.
A campaign spend may name its ``period`` instead of its dates (see ``periods``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.events import INBOUND_ADAPTER, InboundEvent
from services.ingest.collect import (
    Collected,
    Originals,
    count_resolutions,
    reject,
    remember_visitor,
)
from services.ingest.errors import RejectedMessage, reject_oversized
from services.ingest.identity import (
    CONFIDENCE,
    Provenance,
    VisitorAccounts,
    attendees_domain,
    domain_of_email,
)
from services.ingest.periods import with_period_dates
from services.ingest.segment import Lookup, Received, corrected_time, parse_time
from services.kit import metrics

# Ours to set whatever the sender says (schema_version: we validated against this one).
SERVER_SET = frozenset(
    {
        "received_at",
        "source",
        "account_provenance",
        "account_confidence",
        "schema_version",
        "client_occurred_at",
        "client_sent_at",
    }
)


def collect_native(
    items: Sequence[Any],
    received: Received,
    visitors: VisitorAccounts,
    max_event_bytes: int,
    originals: Originals | None = None,
) -> Collected:
    """Validate every item alone: a bad one is rejected (and dead-lettered as it was sent,
    see ``collect.dead_letter_bytes``), never the batch.

    Repeated ``event_id`` values within the request are dropped after the first.
    """
    result = Collected()
    seen: set[str] = set()
    for index, item in enumerate(items):
        try:
            event = native_event(item, received, max_event_bytes, visitors.get)
        except RejectedMessage as rejection:
            original = originals(index) if originals else None
            reject(result, index, item, original, rejection, received.source, ("event_id",))
            continue
        if event.event_id in seen:
            result.duplicates += 1
            metrics.INGEST_EVENTS.labels(event.type, "duplicate").inc()
            continue
        seen.add(event.event_id)
        result.events.append(event)
        remember_visitor(event, visitors)
    count_resolutions(result.events)
    return result


def native_event(
    item: Any, received: Received, max_event_bytes: int, known: Lookup = lambda _visitor: None
) -> InboundEvent:
    """One item as an event of ours; raises ``RejectedMessage`` naming the bad field.

    ``known`` gives the account an earlier event identified a visitor id as.
    """
    if not isinstance(item, Mapping):
        raise RejectedMessage("event", "must be a JSON object")
    reject_oversized(item, max_event_bytes, "event")
    event_id = item.get("event_id")
    if not isinstance(event_id, str) or not event_id.strip():
        raise RejectedMessage("event_id", "required: it is what makes retries safe")
    document = {k: v for k, v in item.items() if k not in SERVER_SET}
    if document.get("type") == "campaign_spent":
        document = with_period_dates(document)
    client_occurred_at = _client_time(item.get("occurred_at"))
    document.update(
        event_id=event_id.strip(),
        occurred_at=corrected_time(
            client_occurred_at, received.sent_at, received.at, "occurred_at", "sent_at"
        ),
        client_occurred_at=client_occurred_at,
        client_sent_at=received.sent_at,
        received_at=received.at,
        source=received.source,
        **_provenance(item, known, received.own_domains),
    )
    return _validate(document)


def _client_time(value: Any) -> datetime:
    """The item's ``occurred_at`` as the sender's clock gave it (required)."""
    if value in (None, ""):
        raise RejectedMessage("occurred_at", "required: when the fact happened (ISO 8601)")
    try:
        occurred = parse_time(value)
    except RejectedMessage as rejection:
        raise RejectedMessage("occurred_at", rejection.reason) from None
    assert occurred is not None  # parse_time gives None only for absent values
    return occurred


def _provenance(
    item: Mapping[str, Any], known: Lookup, own_domains: frozenset[str]
) -> dict[str, Any]:
    """The evidence order of ``identity``: the sender's ``account`` (a CRM knows its
    records' domains), else a work email's domain (a meeting's: its attendees' one
    company), else the visitor's (``anonymous_id``, else ``user_id``) earlier account."""
    if item.get("account") not in (None, ""):
        # An invalid domain is the validator's to reject, with its own message.
        return _named_by("group_id")
    email = item.get("contact_email")
    if isinstance(email, str) and (domain := domain_of_email(email)):
        return {"account": domain, **_named_by("email_domain")}
    if domain := attendees_domain(item.get("attendees"), own_domains):
        return {"account": domain, **_named_by("email_domain")}
    for visitor in (item.get("anonymous_id"), item.get("user_id")):
        if isinstance(visitor, str) and (account := known(visitor)):
            return {"account": account, **_named_by("visitor")}
    return {"account": None}


def _named_by(provenance: Provenance) -> dict[str, Any]:
    return {"account_provenance": provenance, "account_confidence": CONFIDENCE[provenance]}


def _validate(document: dict[str, Any]) -> InboundEvent:
    try:
        return INBOUND_ADAPTER.validate_python(document)
    except ValidationError as error:
        first = error.errors()[0]
        kind = document.get("type")
        location = [str(p) for p in first.get("loc", ()) if p != kind]
        if first.get("type") == "union_tag_invalid":
            raise RejectedMessage("type", f"unsupported event type {str(kind)[:32]!r}") from None
        if first.get("type") == "union_tag_not_found":
            raise RejectedMessage("type", "required: one of the inbound event types") from None
        raise RejectedMessage(".".join(location) or "event", first.get("msg", "invalid")) from None
