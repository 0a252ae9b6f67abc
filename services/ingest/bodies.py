"""A request's body: bounded while it streams in, gunzipped when it says so, a JSON object;
anything else is a ``Problem`` naming ``body`` (400, or 413 past the limit)."""

from __future__ import annotations

import gzip
import json
import zlib
from typing import Any

from fastapi import Request

from services.ingest.errors import Problem


async def json_body(request: Request, max_bytes: int) -> dict[str, Any]:
    document, _ = await json_body_and_bytes(request, max_bytes)
    return document


async def json_body_and_bytes(request: Request, max_bytes: int) -> tuple[dict[str, Any], bytes]:
    """The body's JSON object, and its bytes (gunzipped): what a rejected message of it is
    dead-lettered from (see ``originals``)."""
    raw = await _bounded_body(request, max_bytes)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        raw = _gunzip(raw, max_bytes)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "body", "not valid JSON") from None
    except RecursionError:  # e.g. 10 KB of "[": deeper than the parser goes
        raise Problem(400, "body", "nested too deeply") from None
    if not isinstance(document, dict):
        raise Problem(400, "body", "must be a JSON object")
    return document, raw


async def _bounded_body(request: Request, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise Problem(413, "body", f"larger than {max_bytes // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(raw, max_bytes + 1)
    except (zlib.error, gzip.BadGzipFile):
        raise Problem(400, "body", "Content-Encoding is gzip but the body is not") from None
    if len(data) > max_bytes:
        raise Problem(413, "body", f"larger than {max_bytes // 1024} KB once decompressed")
    return data
