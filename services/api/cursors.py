"""Opaque keyset cursors: base64url of a small JSON document, validated on the way in."""

from __future__ import annotations

import base64
import binascii
import json
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
