"""Opaque keyset cursors: base64url of a small JSON document, validated on the way in.

A cursor is client input: each field is checked for the type and range its query needs
(64-bit integers, text without NUL, instants UTC can express), so a forged one is a 400,
never a database error.
"""

from __future__ import annotations

import base64
import binascii
import json
import math
from datetime import datetime
from typing import Any

from services.api.edge import to_utc
from services.api.errors import BadRequest

BIGINT_MAX = 2**63 - 1
EVENT_ID_LENGTH = 128


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
    event_id = cursor_text(position.get("e"), max_length=EVENT_ID_LENGTH)
    return cursor_moment(position.get("t")), event_id


def forged(field: str = "cursor") -> BadRequest:
    return BadRequest("not a cursor this API returned", field=field)


def cursor_count(value: Any, *, field: str = "cursor") -> int:
    """A non-negative 64-bit integer (``bool`` is an ``int`` to Python, not here)."""
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= BIGINT_MAX:
        raise forged(field)
    return value


def cursor_text(value: Any, *, max_length: int, field: str = "cursor") -> str:
    """Text PostgreSQL can compare: no NUL, and no longer than the column."""
    if not isinstance(value, str) or "\x00" in value or len(value) > max_length:
        raise forged(field)
    return value


def cursor_number(value: Any, *, field: str = "cursor") -> float:
    """A finite float (JSON also reads NaN, Infinity and integers past float's range)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise forged(field)
    try:
        number = float(value)
    except OverflowError:  # an integer past float's range
        raise forged(field) from None
    if not math.isfinite(number):
        raise forged(field)
    return number


def cursor_moment(value: Any, *, field: str = "cursor") -> datetime:
    """An ISO 8601 instant with its zone, in UTC."""
    if not isinstance(value, str):
        raise forged(field)
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise forged(field) from None
    try:
        return to_utc(moment, field)
    except BadRequest:
        raise forged(field) from None


def after_time_and_id(kind: str, moment: datetime, event_id: str) -> str:
    return encode_cursor({"k": kind, "t": moment.isoformat(), "e": event_id})
