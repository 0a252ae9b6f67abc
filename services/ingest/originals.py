"""The elements of a body's array (a batch's messages) as the sender sent them: each one's
exact bytes and its parsed value, so that a rejected message is dead-lettered as it came,
not re-encoded (key order, spacing, number and escape spelling kept).

Found again only when a message is rejected: the body is parsed once, by ``json.loads``, on
the way in; a rejection re-scans it with the same decoder (``raw_decode``, element by
element), so the parsed values agree with what was validated. A body this scanner cannot
read (not UTF-8, say) gives no originals, and the caller re-encodes.
"""

from __future__ import annotations

import json
import re
from typing import Any

_WHITESPACE = re.compile(r"[ \t\n\r]*")
_DECODER = json.JSONDecoder()

Original = tuple[bytes, Any]  # the element's bytes, and their value


class ArrayElements:
    """The elements of the array at ``key`` of the JSON object ``raw``, scanned on the first
    call; ``None`` for an index it has not (or for every index of a body it cannot read)."""

    def __init__(self, raw: bytes, key: str) -> None:
        self._raw = raw
        self._key = key
        self._elements: list[Original] | None = None

    def __call__(self, index: int) -> Original | None:
        if self._elements is None:
            self._elements = array_elements(self._raw, self._key)
        return self._elements[index] if 0 <= index < len(self._elements) else None


def array_elements(raw: bytes, key: str) -> list[Original]:
    """Every element of the array at ``key`` (the last ``key``, as ``json.loads`` keeps the
    last of repeated keys); empty when ``raw`` is not such an object."""
    try:
        return _object(raw.decode("utf-8"), key)
    except (UnicodeDecodeError, ValueError, IndexError, RecursionError):
        return []


def _skip(text: str, at: int) -> int:
    match = _WHITESPACE.match(text, at)
    return match.end() if match else at


def _object(text: str, key: str) -> list[Original]:
    found: list[Original] = []
    at = _skip(text, 0)
    if text[at] != "{":
        return []
    at = _skip(text, at + 1)
    if text[at] == "}":
        return []
    while True:
        name, at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] != ":":
            raise ValueError("expected ':'")
        at = _skip(text, at + 1)
        if name == key and text[at] == "[":
            found, at = _array(text, at)
        else:
            _, at = _DECODER.raw_decode(text, at)
        at = _skip(text, at)
        if text[at] == "}":
            return found
        if text[at] != ",":
            raise ValueError("expected ',' or '}'")
        at = _skip(text, at + 1)


def _array(text: str, at: int) -> tuple[list[Original], int]:
    elements: list[Original] = []
    at = _skip(text, at + 1)
    if text[at] == "]":
        return elements, at + 1
    while True:
        value, end = _DECODER.raw_decode(text, at)
        elements.append((text[at:end].encode(), value))
        at = _skip(text, end)
        if text[at] == "]":
            return elements, at + 1
        if text[at] != ",":
            raise ValueError("expected ',' or ']'")
        at = _skip(text, at + 1)
