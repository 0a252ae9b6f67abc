"""Strong ETags on every successful read; ``If-None-Match`` revalidates to a bodiless 304.

By default the tag is a hash of the exact body, so it changes exactly when what the
poller would see changes; revalidating then saves the transfer, not the query. A route
that can tell its version more cheaply (the account detail: one primary-key lookup) sets
its own ETag and answers 304 itself, before building the body; the middleware keeps it.
"""

from __future__ import annotations

import hashlib
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send


def strong_etag(body: bytes) -> str:
    return '"' + hashlib.sha256(body).hexdigest()[:32] + '"'


def version_etag(key: str, version: tuple[Any, ...]) -> str:
    """A strong tag from what a resource's representation depends on."""
    digest = hashlib.sha256(repr((key, version)).encode()).hexdigest()[:32]
    return f'"v-{digest}"'


def matches(if_none_match: str | None, etag: str) -> bool:
    if not if_none_match:
        return False
    candidates = {tag.strip().removeprefix("W/") for tag in if_none_match.split(",")}
    return etag in candidates or "*" in candidates


class ConditionalGetMiddleware:
    """Adds the body-hash ETag to successful JSON reads and answers a matching
    ``If-None-Match`` with 304 (plain ASGI: it buffers only the responses it tags)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []

        async def buffer(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                if _taggable(message):
                    start = message
                    return
                await send(message)
            elif start is not None:
                chunks.append(message.get("body", b""))
                if not message.get("more_body", False):
                    await _finish(scope, start, b"".join(chunks), send)
            else:
                await send(message)

        await self.app(scope, receive, buffer)


def _taggable(start: Message) -> bool:
    headers = dict(start.get("headers", []))
    return (
        start["status"] == 200
        and b"etag" not in headers
        and headers.get(b"content-type", b"").startswith(b"application/json")
    )


async def _finish(scope: Scope, start: Message, body: bytes, send: Send) -> None:
    etag = strong_etag(body)
    request_headers = dict(scope.get("headers", []))
    if_none_match = request_headers.get(b"if-none-match", b"").decode("latin-1") or None
    kept = [(k, v) for k, v in start.get("headers", []) if k not in (b"content-length", b"etag")]
    tags = [(b"etag", etag.encode()), (b"cache-control", b"no-cache")]
    if matches(if_none_match, etag):
        headers = [(k, v) for k, v in kept if k != b"content-type"] + tags
        await send({"type": "http.response.start", "status": 304, "headers": headers})
        await send({"type": "http.response.body", "body": b""})
        return
    headers = [*kept, *tags, (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": 200, "headers": headers})
    await send({"type": "http.response.body", "body": body})
