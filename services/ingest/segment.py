"""Segment tracking-spec messages -> our events (pure: no I/O, no clock).

The mapping follows the domain file's event vocabulary. Event time corrects the sender's
clock skew as Segment does: ``timestamp = received_at - (sent_at - original_timestamp)``,
and an event claiming to be in the future is clamped to ``received_at``; the sender's raw
values are kept as ``client_occurred_at`` and ``client_sent_at``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from pydantic import ValidationError

from schemas.events import INBOUND_ADAPTER, InboundEvent
from services.ingest.bots import is_bot
from services.ingest.errors import RejectedMessage
from services.ingest.identity import RangeLookup, resolve_account
from services.ingest.periods import with_period_dates
from services.kit.credentials import IpPolicy

TRACK_TYPES: Mapping[str, str] = {
    "ad impression": "ad_impressed",
    "ad clicked": "ad_clicked",
    "chat started": "chat_started",
    "chat message": "chat_message_sent",
    "email sent": "email_sent",
    "email opened": "email_opened",
    "email clicked": "email_clicked",
    "email replied": "email_replied",
    "meeting held": "meeting_held",
    "form submitted": "form_submitted",
    "intent signal": "intent_signal_received",
    "opportunity created": "opportunity_created",
    "opportunity updated": "opportunity_updated",
    "opportunity won": "opportunity_won",
    "opportunity lost": "opportunity_lost",
    "subscription renewed": "subscription_renewed",
    "subscription expanded": "subscription_expanded",
    "subscription churned": "subscription_churned",
    "nps submitted": "nps_submitted",
    "campaign spend": "campaign_spent",
}

FIRMOGRAPHIC_TRAITS: Mapping[str, str] = {
    "name": "name",
    "industry": "industry",
    "country": "country",
    "employees": "employees",
    "annual_revenue": "annual_revenue",
    "annualRevenue": "annual_revenue",
    "technologies": "technologies",
    "funding": "funding",
    "customer_count": "customer_count",
    "maturity": "maturity",
    "owner": "owner",
    "target": "target",
}


@dataclass(frozen=True, slots=True)
class Received:
    """What the request adds to every message: when, from which source, batch context
    (for browser-facing routes, the client's address as ``context.ip``), and what the
    source lets us keep of IP addresses."""

    at: datetime
    source: str
    sent_at: datetime | None = None
    context: Mapping[str, Any] | None = None
    ip_policy: IpPolicy = "truncate"
    own_domains: frozenset[str] = frozenset()  # ours: never an account (meeting attendees)


Lookup = Callable[[str], str | None]


def to_event(
    message: Mapping[str, Any],
    received: Received,
    known: Lookup,
    ranges: RangeLookup | None = None,
) -> InboundEvent | None:
    """Map one Segment message; ``None`` when the spec call has no event of ours.

    The message's IP (``context.ip``) only serves the account lookup: no event carries it.
    """
    kind = message.get("type")
    if kind not in ("page", "screen", "track", "identify", "group", "alias"):
        raise RejectedMessage("type", f"unsupported message type {str(kind)[:32]!r}")
    own_context = _mapping(message, "context")
    context = {**received.context, **own_context} if received.context else own_context
    resolution = resolve_account(message, context, known, ranges, received.own_domains)
    fields = _specific_fields(kind, message, context)
    if fields is None:
        return None
    field, client_occurred_at, client_sent_at = sender_clock(message, received)
    document = {
        **fields,
        "event_id": _event_id(message),
        "occurred_at": corrected_time(
            client_occurred_at, client_sent_at, received.at, field, "sentAt"
        ),
        "client_occurred_at": client_occurred_at,
        "client_sent_at": client_sent_at,
        "received_at": received.at,
        "account": resolution.account,
        "account_provenance": resolution.provenance,
        "account_confidence": resolution.confidence,
        "anonymous_id": message.get("anonymousId") or message.get("userId"),
        "source": received.source,
        "is_bot": is_bot(str(context.get("userAgent") or "")),
    }
    return _validate(document)


def event_time(message: Mapping[str, Any], received: Received) -> datetime:
    """``received_at - (sent_at - original_timestamp)``, clamped to ``received_at``.

    The device's own clock is ``originalTimestamp`` when the message has one (Segment's
    ``timestamp`` is then a time already corrected, which correcting again would skew);
    otherwise ``timestamp``.
    """
    field, original, sent_at = sender_clock(message, received)
    return corrected_time(original, sent_at, received.at, field, "sentAt")


def sender_clock(
    message: Mapping[str, Any], received: Received
) -> tuple[str, datetime | None, datetime | None]:
    """The sender's raw clock values: the field the event's time came from, when the event
    happened and when it was sent (the message's ``sentAt``, else the batch's)."""
    field = _device_time_field(message)
    original = parse_time(message.get(field), field)
    sent_at = parse_time(message.get("sentAt"), "sentAt") or received.sent_at
    return field, original, sent_at


def corrected_time(
    original: datetime | None,
    sent_at: datetime | None,
    received_at: datetime,
    field: str,
    sent_field: str,
) -> datetime:
    """``received_at - (sent_at - original)``, clamped to ``received_at``; ``received_at``
    when the sender gave no time. ``field``/``sent_field`` name the inputs in a rejection."""
    if original is None:
        return received_at
    if sent_at is not None:
        try:
            original = received_at - (sent_at - original)
        except OverflowError:  # found by the fuzzer: sentAt and timestamp millennia apart
            raise RejectedMessage(field, f"out of range once corrected by {sent_field}") from None
    return min(original, received_at)  # a sender's clock ahead of ours: clamp, keep order


def _device_time_field(message: Mapping[str, Any]) -> str:
    return "originalTimestamp" if message.get("originalTimestamp") else "timestamp"


def _specific_fields(
    kind: str, message: Mapping[str, Any], context: Mapping[str, Any]
) -> dict[str, Any] | None:
    properties = _mapping(message, "properties")
    if kind in ("page", "screen"):
        page = _mapping(context, "page")
        return {
            "type": "page_viewed",
            "url": properties.get("url") or page.get("url") or properties.get("path") or "",
            "referrer": properties.get("referrer") or page.get("referrer"),
            "title": properties.get("title") or page.get("title") or message.get("name"),
        }
    if kind == "group":
        traits = _mapping(message, "traits")
        values = {
            ours: traits[theirs] for theirs, ours in FIRMOGRAPHIC_TRAITS.items() if theirs in traits
        }
        return {"type": "account_upserted", **values}
    if kind == "identify":
        traits = _mapping(message, "traits")
        if not traits.get("email"):
            return None
        return {
            "type": "contact_identified",
            "contact_email": traits["email"],
            "user_id": message.get("userId"),
            "title": traits.get("title"),
            "role": traits.get("role"),
        }
    if kind == "track":
        return _track_fields(message, properties)
    return None  # alias: only stitches identities


def _track_fields(
    message: Mapping[str, Any], properties: Mapping[str, Any]
) -> dict[str, Any] | None:
    name = message.get("event")
    if not isinstance(name, str) or not name.strip():
        raise RejectedMessage("event", "a track call needs an event name")
    ours = TRACK_TYPES.get(name.strip().lower())
    if ours is None:
        return None  # a custom event with no meaning for ABM: accepted, not produced
    fields = {k: v for k, v in properties.items() if k not in ("type", "account")}
    fields["type"] = ours
    if "email" in properties and "contact_email" not in fields:
        fields["contact_email"] = properties["email"]
    if ours == "intent_signal_received" and "source" in properties:
        fields["provider"] = properties["source"]
        fields.pop("source", None)
    if ours == "campaign_spent":
        return with_period_dates(fields)
    return fields


def _validate(document: dict[str, Any]) -> InboundEvent:
    try:
        # The adapter's validator itself: TypeAdapter.validate_python only forwards to it.
        return _VALIDATE(document)  # type: ignore[no-any-return]
    except ValidationError as error:
        first = error.errors()[0]
        location = [str(p) for p in first.get("loc", ()) if str(p) != document.get("type")]
        raise RejectedMessage(
            ".".join(location) or "message", first.get("msg", "invalid")
        ) from None


_VALIDATE = INBOUND_ADAPTER.validator.validate_python


def _event_id(message: Mapping[str, Any]) -> str:
    message_id = message.get("messageId")
    if not isinstance(message_id, str) or not message_id.strip():
        raise RejectedMessage("messageId", "required: it is what makes retries safe")
    return message_id.strip()


def parse_time(value: Any, field: str = "timestamp") -> datetime | None:
    """An ISO 8601 time with its zone; ``RejectedMessage(field, ...)`` for anything else."""
    if value in (None, ""):
        return None
    if not isinstance(value, str):
        raise RejectedMessage(field, "must be an ISO 8601 string")
    try:
        moment = datetime.fromisoformat(value)  # a trailing Z too, since Python 3.11
    except ValueError:
        raise RejectedMessage(field, f"not ISO 8601: {value[:40]!r}") from None
    if moment.tzinfo is None:
        raise RejectedMessage(field, "needs a time zone (e.g. a trailing Z)")
    return moment


def _mapping(container: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = container.get(key)
    if value is None:
        return {}
    if not isinstance(value, Mapping):
        raise RejectedMessage(key, "must be an object")
    return value
