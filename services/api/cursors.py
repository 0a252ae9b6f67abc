"""Opaque keyset cursors: base64url of a small JSON document, validated on the way in."""

from __future__ import annotations

import base64
import binascii
import json
from datetime import datetime
from typing import Any

from services.api.errors import BadRequest


def encode_cursor(position: dict[str, Any]) -> str:
    raw = json.dumps(position, separators=(",", ":"), default=str).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, kind: str) -> dict[str, Any] | None:
    """The position a cursor names; ``kind`` guards against cursors from another listing."""
    if cursor is None:
        return None
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        position = json.loads(raw)
    except (binascii.Error, ValueError, UnicodeDecodeError):
        raise BadRequest("not a cursor this API returned", field="cursor") from None
    if not isinstance(position, dict) or position.get("k") != kind:
        raise BadRequest("this cursor belongs to another listing or sort", field="cursor")
    return position


def time_and_id(position: dict[str, Any] | None) -> tuple[datetime, str] | None:
    """The (time, event id) a time-ordered listing's cursor resumes after."""
    if position is None:
        return None
    try:
        return datetime.fromisoformat(str(position["t"])), str(position["e"])
    except (KeyError, ValueError):
        raise BadRequest("not a cursor this API returned", field="cursor") from None


def after_time_and_id(kind: str, moment: datetime, event_id: str) -> str:
    return encode_cursor({"k": kind, "t": moment.isoformat(), "e": event_id})
