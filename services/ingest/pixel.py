"""The 1x1 tracking pixel: query parameters -> a page view (pure)."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Mapping
from typing import Any

# The canonical 43-byte transparent GIF.
GIF = base64.b64decode("R0lGODlhAQABAIAAAP///wAAACH5BAEAAAAALAAAAAABAAEAAAICRAEAOw==")
NO_CACHE = {"Cache-Control": "no-cache, no-store, must-revalidate", "Pragma": "no-cache"}


def pixel_message(query: Mapping[str, str]) -> dict[str, Any]:
    """A Segment ``page`` message from the pixel's short query parameters.

    ``k`` write key (not part of the message), ``url``, ``ref``, ``title``, ``aid`` the
    first-party visitor id, ``gid`` the account domain when the page knows it, ``mid`` a
    message id (retries of the same hit carry the same one), ``ts`` the hit's time.
    """
    context: dict[str, Any] = {}
    if query.get("gid"):
        context["groupId"] = query["gid"]
    if query.get("ua"):
        context["userAgent"] = query["ua"]
    return {
        "type": "page",
        "messageId": query.get("mid") or uuid.uuid4().hex,
        "anonymousId": query.get("aid"),
        "timestamp": query.get("ts"),
        "properties": {
            "url": query.get("url") or "",
            "referrer": query.get("ref"),
            "title": query.get("title"),
        },
        "context": context,
    }
