"""A lean HTTP/1.1 client for load generators that share the machine with what they measure.

httpx costs about 1 ms of client CPU per request here (its transport, httpcore, h11 and
anyio layers); a keep-alive connection that writes each request whole and reads the
response by its Content-Length costs about a tenth of that. At the freshness benchmark's
hundreds of requests per second, that difference is cores taken from the services.
Only what our own servers answer is supported: no TLS, no chunked bodies, no redirects.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from types import TracebackType
from urllib.parse import urlsplit


class Http1Pool:
    """Keep-alive connections to one server, opened as concurrency needs them."""

    def __init__(self, base: str, headers: Mapping[str, str] | None = None) -> None:
        parts = urlsplit(base)
        if parts.scheme != "http" or parts.hostname is None:
            raise ValueError(f"only http://host:port is supported, not {base!r}")
        self._host, self._port = parts.hostname, parts.port or 80
        fixed = {"Host": f"{self._host}:{self._port}", **(headers or {})}
        self._headers = "".join(f"{name}: {value}\r\n" for name, value in fixed.items())
        self._idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter]] = []

    async def __aenter__(self) -> Http1Pool:
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        for _, writer in self._idle:
            writer.close()
            with contextlib.suppress(ConnectionError):
                await writer.wait_closed()
        self._idle.clear()

    async def request(
        self, method: str, path: str, body: bytes = b"", content_type: str | None = None
    ) -> tuple[int, bytes]:
        """``(status, body)``; the connection goes back to the pool unless the server
        closes it. A pooled connection the server closed while idle (uvicorn closes them
        after 5 s) is replaced once, as any keep-alive client does: the request never
        reached the application."""
        head = f"{method} {path} HTTP/1.1\r\n{self._headers}Content-Length: {len(body)}\r\n"
        if content_type:
            head += f"Content-Type: {content_type}\r\n"
        message = head.encode() + b"\r\n" + body
        if self._idle:
            try:
                return await self._exchange(self._idle.pop(), message)
            except (ConnectionError, asyncio.IncompleteReadError) as error:
                if isinstance(error, asyncio.IncompleteReadError) and error.partial:
                    raise  # the server had started answering: not a stale connection
        return await self._exchange(await self._connect(), message)

    async def _exchange(
        self, connection: tuple[asyncio.StreamReader, asyncio.StreamWriter], message: bytes
    ) -> tuple[int, bytes]:
        reader, writer = connection
        try:
            writer.write(message)
            status, length, close = _parse_head(await reader.readuntil(b"\r\n\r\n"))
            payload = await reader.readexactly(length)
        except BaseException:
            writer.close()
            raise
        if close:
            writer.close()
        else:
            self._idle.append(connection)
        return status, payload

    async def _connect(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        return await asyncio.open_connection(self._host, self._port)


def _parse_head(head: bytes) -> tuple[int, int, bool]:
    """Status, Content-Length and whether the server closes the connection."""
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split(" ", 2)[1])
    fields = {}
    for line in lines[1:]:
        if line:
            name, _, value = line.partition(":")
            fields[name.strip().lower()] = value.strip()
    if "chunked" in fields.get("transfer-encoding", ""):
        raise ValueError("chunked responses are not supported")
    return status, int(fields.get("content-length", "0")), fields.get("connection") == "close"
