"""Snowplow tracker-protocol payloads -> Segment-shaped messages (pure: no I/O, no clock).

Translating into the Segment shape lets one mapping (``segment.to_event``), one identity
resolution and one clock-skew correction serve both protocols:

- ``e=pv`` -> ``page`` (``url``, ``refr``, ``page`` = title);
- ``e=se`` whose action (``se_ac``) or category (``se_ca``) names one of our track events
  (e.g. "Ad Clicked") -> that ``track`` event; label, property and value fill the event's
  main fields (``STRUCTURED_FIELDS``); any other structured event is ignored;
- ``e=ue`` whose self-describing schema name is one of our events (e.g.
  ``iglu:com.abm/intent_signal/jsonschema/1-0-0``) -> that event with the schema's data as
  properties; others are ignored; every other ``e`` (page pings, transactions) is ignored.

Contexts (``co`` or base64 ``cx``): an entity named ``account`` (``groupId`` or ``domain``)
names the account, one named ``contact`` (``email``) identifies the visitor, one named
``properties`` adds event properties. Times: ``ttm`` (true timestamp) is trusted as is;
otherwise ``dtm`` (device created) and ``stm`` (device sent) correct the clock skew like
Segment's ``timestamp`` and ``sentAt``. The visitor is ``duid``, else ``tnuid``, else ``sid``.
The ``ip`` parameter becomes ``context.ip`` (company IP ranges).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from services.ingest.errors import RejectedMessage
from services.ingest.segment import TRACK_TYPES

# Our track event -> the properties a structured event's label, property and value fill.
STRUCTURED_FIELDS: Mapping[str, tuple[str, str, str]] = {
    "ad_impressed": ("campaign_id", "channel", "value"),
    "ad_clicked": ("campaign_id", "channel", "value"),
    "intent_signal_received": ("topic", "source", "score"),
    "nps_submitted": ("label", "property", "score"),
    "opportunity_created": ("opportunity_id", "stage", "amount"),
    "opportunity_updated": ("opportunity_id", "stage", "amount"),
    "opportunity_won": ("opportunity_id", "stage", "amount"),
    "opportunity_lost": ("opportunity_id", "stage", "amount"),
    "campaign_spent": ("period", "channel", "amount"),
}
_DEFAULT_FIELDS = ("label", "property", "value")
_BY_OUR_NAME = {ours: theirs for theirs, ours in TRACK_TYPES.items()}


def to_segment(payload: Mapping[str, Any]) -> dict[str, Any]:
    """One Snowplow event payload as a Segment message for ``segment.to_event``."""
    kind = payload.get("e")
    if not isinstance(kind, str) or not kind:
        raise RejectedMessage("e", "every Snowplow event needs its type (pv, se, ue, ...)")
    entities = _contexts(payload)
    message: dict[str, Any] = {
        "messageId": payload.get("eid"),
        "anonymousId": payload.get("duid") or payload.get("tnuid") or payload.get("sid"),
        "userId": payload.get("uid"),
        "context": _segment_context(payload, entities),
        **_times(payload),
    }
    if email := entities.get("contact", {}).get("email"):
        message["traits"] = {"email": email}
    return message | _specific(kind, payload, dict(entities.get("properties", {})))


def event_name(schema_or_name: str) -> str | None:
    """The Segment track name for a schema name or one of our type names, if ours."""
    name = schema_or_name.strip().lower()
    if name in TRACK_TYPES:
        return name
    spaced = name.replace("_", " ")
    if spaced in TRACK_TYPES:
        return spaced
    return _BY_OUR_NAME.get(name)


def _specific(kind: str, payload: Mapping[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    if kind == "pv":
        page = {"url": payload.get("url") or "", "referrer": payload.get("refr")}
        return {"type": "page", "properties": {**properties, **page, "title": payload.get("page")}}
    if kind == "se":
        return _structured(payload, properties)
    if kind == "ue":
        return _self_describing(payload, properties)
    return _ignored(f"e={kind[:16]}")


def _structured(payload: Mapping[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    names = [payload.get("se_ac"), payload.get("se_ca")]
    name = next((n for v in names if isinstance(v, str) and (n := event_name(v))), None)
    if name is None:
        return _ignored("structured event")
    label, prop, value = STRUCTURED_FIELDS.get(TRACK_TYPES[name], _DEFAULT_FIELDS)
    for field, raw in ((label, "se_la"), (prop, "se_pr"), (value, "se_va")):
        if payload.get(raw) not in (None, ""):
            properties.setdefault(field, payload[raw])
    return {"type": "track", "event": name, "properties": properties}


def _self_describing(payload: Mapping[str, Any], properties: dict[str, Any]) -> dict[str, Any]:
    envelope = _json_field(payload, "ue_pr", "ue_px")
    inner = envelope.get("data") if isinstance(envelope, Mapping) else None
    if not isinstance(inner, Mapping) or not isinstance(inner.get("data"), Mapping):
        raise RejectedMessage("ue_pr", "a self-describing event needs {schema, data}")
    name = event_name(_schema_name(inner.get("schema")))
    if name is None:
        return _ignored("self-describing event")
    return {"type": "track", "event": name, "properties": {**properties, **inner["data"]}}


def _ignored(what: str) -> dict[str, Any]:
    """A track call no event of ours has: ``to_event`` accepts it and produces nothing."""
    return {"type": "track", "event": f"snowplow {what}", "properties": {}}


def _contexts(payload: Mapping[str, Any]) -> dict[str, Mapping[str, Any]]:
    """The context entities by schema name (``account``, ``contact``, ``properties``)."""
    document = _json_field(payload, "co", "cx")
    entities = document.get("data") if isinstance(document, Mapping) else None
    if document is not None and not isinstance(entities, list):
        raise RejectedMessage("co", "contexts must be {schema, data: [entities]}")
    named: dict[str, Mapping[str, Any]] = {}
    for entity in entities or []:
        if isinstance(entity, Mapping) and isinstance(entity.get("data"), Mapping):
            named[_schema_name(entity.get("schema"))] = entity["data"]
    return named


def _segment_context(payload: Mapping[str, Any], entities: Mapping[str, Any]) -> dict[str, Any]:
    context: dict[str, Any] = {}
    account = entities.get("account", {})
    if group := account.get("groupId") or account.get("domain"):
        context["groupId"] = group
    if payload.get("ua"):
        context["userAgent"] = payload["ua"]
    if payload.get("ip"):
        context["ip"] = payload["ip"]  # the tracker's ``ip`` beats the request's address
    return context


def _times(payload: Mapping[str, Any]) -> dict[str, str | None]:
    if payload.get("ttm"):
        return {"timestamp": _iso(payload, "ttm"), "sentAt": None}
    return {"timestamp": _iso(payload, "dtm"), "sentAt": _iso(payload, "stm")}


def _iso(payload: Mapping[str, Any], field: str) -> str | None:
    value = payload.get(field)
    if value in (None, ""):
        return None
    try:
        return datetime.fromtimestamp(int(float(value)) / 1000, UTC).isoformat()
    except (TypeError, ValueError, OverflowError, OSError):
        raise RejectedMessage(field, "must be milliseconds since the epoch") from None


def _json_field(payload: Mapping[str, Any], plain: str, encoded: str) -> Any:
    """A JSON value sent either as plain text (``co``) or base64url (``cx``)."""
    try:
        if payload.get(plain):
            return json.loads(payload[plain])
        if payload.get(encoded):
            raw = str(payload[encoded])
            return json.loads(base64.urlsafe_b64decode(raw + "=" * (-len(raw) % 4)))
    except (ValueError, TypeError, binascii.Error):
        raise RejectedMessage(plain, f"{plain}/{encoded} is not (base64) JSON") from None
    except RecursionError:  # e.g. 3,000 "[": deeper than the parser goes
        raise RejectedMessage(plain, f"{plain}/{encoded} is nested too deeply") from None
    return None


def _schema_name(schema: Any) -> str:
    """``iglu:com.abm/intent_signal/jsonschema/1-0-0`` -> ``intent_signal``."""
    parts = str(schema or "").split("/")
    return parts[1] if len(parts) >= 3 else ""
