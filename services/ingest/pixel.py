"""The 1x1 tracking pixel: query parameters -> a Segment message, a page view by default."""

from __future__ import annotations

import base64
import binascii
import json
import os
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from services.ingest.errors import RejectedMessage

# The canonical 43-byte transparent GIF.
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
# A hit's parameters, as a JSON object: about the longest URL servers and proxies take.
MAX_HIT_BYTES = 8 * 1024
NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


def pixel_query(scope: Mapping[str, Any]) -> dict[str, str]:
    """The hit's query parameters (the last of repeated ones), parsed as Starlette does
    (``parse_qsl`` keeping blank values), without building its multi-dict: the pixel is
    ingest's highest-rate path. Only the parts that need it are unquoted, which halves
    the cost of ``parse_qsl`` on a typical hit, with the same result."""
    query: dict[str, str] = {}
    for part in scope.get("query_string", b"").decode("latin-1").split("&"):
        if not part:
            continue
        name, _, value = part.partition("=")
        query[_unquoted(name)] = _unquoted(value)
    return query


def _unquoted(text: str) -> str:
    if "+" in text:
        text = text.replace("+", " ")
    return unquote(text) if "%" in text else text


def pixel_message(query: Mapping[str, str]) -> dict[str, Any]:
    """A Segment message from the pixel's short query parameters: a ``page`` call unless
    ``data`` says otherwise. Raises ``RejectedMessage`` for a ``data`` that is not one.

    ``k`` write key (not part of the message), ``url``, ``ref``, ``title``, ``aid`` the
    first-party visitor id, ``gid`` the account domain when the page knows it, ``mid`` a
    message id (retries of the same hit carry the same one), ``ts`` the hit's time.

    ``data`` is a base64 (URL-safe or standard, padding optional) JSON object: a Segment
    message whose fields override the parameters', its ``context`` and ``properties``
    merged into theirs. Where no script runs (ad creatives, email signatures and bodies),
    it is how an image sends a ``track`` call, e.g. "Ad Impression" with ``campaign_id``.
    """
    data = decode_data(query["data"]) if query.get("data") else {}
    kind = data.get("type") or "page"
    context: dict[str, Any] = {}
    if query.get("gid"):
        context["groupId"] = query["gid"]
    if query.get("ua"):
        context["userAgent"] = query["ua"]
    properties: dict[str, Any] = {}
    if kind == "page":  # a track call's properties become its event's fields: no page ones
        properties = {"url": query.get("url") or "", "referrer": query.get("ref"),
                      "title": query.get("title")}  # fmt: skip
    message: dict[str, Any] = {
        "type": kind,
        # 16 random bytes as uuid4 has them, without building a UUID (a pixel's hot path)
        "messageId": query.get("mid") or os.urandom(16).hex(),
        "anonymousId": query.get("aid"),
        "timestamp": query.get("ts"),
        "properties": properties,
        "context": context,
    }
    for name, value in data.items():
        if name == "writeKey":  # the key travels as ``k``; a credential is never an event's
            continue
        if name in ("context", "properties") and isinstance(value, Mapping):
            message[name] = {**message[name], **value}
        else:
            message[name] = value
    return message


def decode_data(raw: str) -> dict[str, Any]:
    """The ``data`` parameter: base64 of a JSON object (a ``+`` left unescaped in the URL
    arrives as a space)."""
    try:
        text = base64.urlsafe_b64decode(
            raw.replace("+", "-").replace(" ", "-").replace("/", "_") + "=" * (-len(raw) % 4)
        )
        document = json.loads(text)
    # ValueError includes UnicodeDecodeError and JSONDecodeError; RecursionError is what a
    # deeply nested document raises (found by hand: 2,500 brackets fit in a URL).
    except (ValueError, binascii.Error, RecursionError):
        raise RejectedMessage("data", "must be base64 of a JSON object") from None
    if not isinstance(document, dict):
        raise RejectedMessage("data", "must be base64 of a JSON object")
    return document
