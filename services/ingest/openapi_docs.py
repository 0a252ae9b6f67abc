"""Request bodies and query parameters of the ingest routes, for the OpenAPI document.

The routes read their bodies themselves (bounded reads, gzip, per-message validation), so
FastAPI cannot infer these schemas; they are declared here, with examples, so that the
spec documents them and Schemathesis can fuzz them. Schemas are inlined (no ``$ref``):
they are attached to single operations, outside ``components``.
"""

from __future__ import annotations

import copy
from typing import Any

from schemas.events import INBOUND_ADAPTER
from services.ingest.native import SERVER_SET

JsonSchema = dict[str, Any]


def _inline(schema: JsonSchema) -> JsonSchema:
    """Replace every ``{"$ref": "#/$defs/X"}`` by a copy of X (the models are not recursive)."""
    definitions = schema.get("$defs", {})

    def resolve(node: Any) -> Any:
        if isinstance(node, dict):
            reference = node.get("$ref")
            if isinstance(reference, str) and reference.startswith("#/$defs/"):
                return resolve(copy.deepcopy(definitions[reference.removeprefix("#/$defs/")]))
            return {k: resolve(v) for k, v in node.items() if k != "$defs"}
        if isinstance(node, list):
            return [resolve(v) for v in node]
        return node

    resolved: JsonSchema = resolve(schema)
    return resolved


_TIME = {"type": "string", "format": "date-time"}
_OBJECT = {"type": "object", "additionalProperties": True}

SEGMENT_MESSAGE: JsonSchema = {
    "type": "object",
    "description": "A Segment tracking-spec message (track, page, screen, identify, group, alias).",
    "properties": {
        "type": {
            "type": "string",
            "enum": ["track", "page", "screen", "identify", "group", "alias"],
        },
        "messageId": {"type": "string", "description": "Required: the idempotency key."},
        "anonymousId": {"type": "string"},
        "userId": {"type": "string"},
        "groupId": {"type": "string"},
        "event": {"type": "string", "description": "track: e.g. `Ad Clicked`, `NPS Submitted`."},
        "timestamp": _TIME,
        "sentAt": _TIME,
        "properties": _OBJECT,
        "traits": _OBJECT,
        "context": _OBJECT,
    },
    "additionalProperties": True,
}

_SEGMENT_EXAMPLE = {
    "type": "track",
    "messageId": "0b2c6a1e-3f47-4c1d-9d5e-1f2a3b4c5d6e",
    "anonymousId": "v-17",
    "event": "Ad Clicked",
    "properties": {"campaign_id": "spring-launch"},
    "context": {"groupId": "acme.com"},
    "timestamp": "2026-05-01T10:00:00Z",
}

SEGMENT_BATCH: JsonSchema = {
    "type": "object",
    "required": ["batch"],
    "properties": {
        "batch": {"type": "array", "items": SEGMENT_MESSAGE, "maxItems": 2500},
        "context": _OBJECT,
        "sentAt": _TIME,
        "writeKey": {"type": "string", "description": "When not sent as HTTP Basic auth."},
    },
}


def native_event_schema() -> JsonSchema:
    """One item of ``POST /v1/events``: an inbound event without the server-set fields."""
    schema = _inline(INBOUND_ADAPTER.json_schema())
    schema.pop("discriminator", None)  # its mapping names $defs, gone once inlined
    for variant in schema["oneOf"]:
        properties = variant["properties"]
        for name in SERVER_SET:
            properties.pop(name, None)
        variant["required"] = [r for r in variant.get("required", []) if r not in SERVER_SET]
    return schema


NATIVE_EXAMPLE = {
    "sent_at": "2026-05-01T10:00:05Z",
    "events": [
        {
            "type": "opportunity_won",
            "event_id": "crm-opp-4711-won",
            "occurred_at": "2026-05-01T09:58:00Z",
            "account": "acme.com",
            "opportunity_id": "4711",
            "amount": 48000,
        },
        {
            "type": "meeting_held",
            "event_id": "cal-88-held",
            "occurred_at": "2026-05-01T09:00:00Z",
            "account": "initech.io",
            "attendees": ["jo@initech.io"],
            "duration_minutes": 30,
        },
    ],
}


def native_batch_schema() -> JsonSchema:
    return {
        "type": "object",
        "required": ["events"],
        "properties": {
            "events": {"type": "array", "items": native_event_schema(), "maxItems": 2500},
            "sent_at": {
                **_TIME,
                "description": "The sender's clock when sending: corrects its skew "
                "(occurred_at + (received_at - sent_at)).",
            },
            "writeKey": {"type": "string", "description": "When not sent as HTTP Basic auth."},
        },
    }


def request_body(schema: JsonSchema, example: Any, description: str) -> dict[str, Any]:
    """``openapi_extra`` for a JSON body (gzip accepted with ``Content-Encoding``)."""
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": schema, "example": example}},
        }
    }


SEGMENT_BATCH_BODY = request_body(
    SEGMENT_BATCH,
    {"batch": [_SEGMENT_EXAMPLE], "sentAt": "2026-05-01T10:00:01Z"},
    "Segment batch: up to 2,500 messages, 500 KB (32 KB each); gzip accepted.",
)
_SEGMENT_MESSAGE_WITH_KEY: JsonSchema = {
    **SEGMENT_MESSAGE,
    "properties": {**SEGMENT_MESSAGE["properties"], "writeKey": {"type": "string"}},
}
SEGMENT_SINGLE_BODY = request_body(
    _SEGMENT_MESSAGE_WITH_KEY,
    {k: v for k, v in _SEGMENT_EXAMPLE.items() if k != "type"},
    "One Segment message (32 KB at most); `type` defaults to the call's name.",
)
NATIVE_BATCH_BODY = request_body(
    native_batch_schema(),
    NATIVE_EXAMPLE,
    "Events in our own schemas: up to 2,500 events, 500 KB (32 KB each); gzip accepted.",
)


def _query(name: str, description: str) -> dict[str, Any]:
    return {"name": name, "in": "query", "required": False, "description": description,
            "schema": {"type": "string"}}  # fmt: skip


PIXEL_QUERY = {
    "parameters": [
        _query("k", "write key (without one the hit is counted, not produced)"),
        _query("url", "page URL"),
        _query("ref", "referrer"),
        _query("title", "page title"),
        _query("aid", "first-party anonymous visitor id"),
        _query("gid", "the account's domain, when the page knows it"),
        _query("mid", "message id (retries of a hit carry the same one)"),
        _query("ts", "the hit's time, ISO 8601"),
        _query(
            "data",
            "base64 (URL-safe or standard, padding optional) of a JSON object: a Segment "
            "message overriding the parameters (its `context` and `properties` merged), e.g. "
            '`{"type":"track","event":"Ad Impression","properties":{"campaign_id":"c1"}}` '
            "from an ad creative or an email; a bad one is dead-lettered, the GIF still sent",
        ),
    ]
}


# The tracker protocol fields ingest reads (services/ingest/snowplow.py), described.
_SNOWPLOW_FIELD_DESCRIPTIONS = {
    "e": "event type: pv (page view), se (structured), ue (self-describing); others ignored",
    "eid": "event id (the idempotency key)",
    "aid": "the tracker's app id: the write key when `k` is not sent",
    "p": "platform (web: the request's user agent and address are the visitor's)",
    "url": "page URL",
    "refr": "referrer",
    "page": "page title",
    "duid": "domain user id (the visitor)",
    "tnuid": "network user id (the visitor without duid)",
    "sid": "session id (the visitor without duid or tnuid)",
    "uid": "user id",
    "dtm": "device created time, ms since the epoch (with stm: clock skew corrected)",
    "stm": "device sent time, ms since the epoch",
    "ttm": "true timestamp, ms since the epoch (trusted as is)",
    "se_ca": "structured event category",
    "se_ac": "structured event action, e.g. `Ad Clicked`",
    "se_la": "structured event label",
    "se_pr": "structured event property",
    "se_va": "structured event value",
    "ue_pr": "self-describing event, JSON",
    "ue_px": "self-describing event, base64url JSON",
    "co": "context entities, JSON (`account`, `contact`, `properties`)",
    "cx": "context entities, base64url JSON",
    "ua": "user agent",
    "ip": "the visitor's IP address (company IP ranges)",
}
_SNOWPLOW_FIELDS = tuple(_SNOWPLOW_FIELD_DESCRIPTIONS)
_SNOWPLOW_PAYLOAD: JsonSchema = {
    "type": "object",
    "description": "One tracker protocol event (all values strings): `e` pv, se or ue.",
    "properties": {name: {"type": "string"} for name in _SNOWPLOW_FIELDS},
    "additionalProperties": {"type": "string"},
}
SNOWPLOW_PIXEL_QUERY = {
    "parameters": [
        _query("k", "write key, else `aid` (without one the hit is counted, not produced)"),
        *(_query(name, text) for name, text in _SNOWPLOW_FIELD_DESCRIPTIONS.items()),
    ]
}
SNOWPLOW_TP2_BODY = request_body(
    {
        "type": "object",
        "required": ["data"],
        "properties": {
            "schema": {"type": "string"},
            "data": {"type": "array", "items": _SNOWPLOW_PAYLOAD, "maxItems": 2500},
        },
    },
    {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [
            {
                "e": "pv",
                "eid": "5f1c7c1e-8a57-4b53-9c55-4d1f4c3f9a10",
                "aid": "<write key>",
                "p": "web",
                "url": "https://acme.com/pricing",
                "duid": "v-17",
                "dtm": "1777629600000",
                "stm": "1777629600100",
            }
        ],
    },
    "payload_data: the Snowplow trackers' POST body; the write key is `?k=` or `aid`.",
)
BEACON_BODY = request_body(
    _SEGMENT_MESSAGE_WITH_KEY,
    {
        **_SEGMENT_EXAMPLE,
        "type": "page",
        "writeKey": "<write key>",
        "properties": {"url": "https://acme.com/pricing"},
    },
    "The tag's page message with its writeKey, sent as text/plain by navigator.sendBeacon.",
)
