"""The benchmarks' lean HTTP/1.1 client: keep-alive reuse, bodies by Content-Length, and a
loud failure on what it does not support."""

from __future__ import annotations

import asyncio
import contextlib

import pytest

from bench.http1 import Http1Pool, _parse_head


async def test_requests_reuse_one_keep_alive_connection() -> None:
    connections = 0
    seen: list[bytes] = []

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal connections
        connections += 1
        with contextlib.suppress(asyncio.IncompleteReadError):  # the client closed
            await answer_each(reader, writer)
        writer.close()

    async def answer_each(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while head := await reader.readuntil(b"\r\n\r\n"):
            length = int(head.lower().split(b"content-length: ")[1].split(b"\r\n")[0])
            body = await reader.readexactly(length)
            seen.append(head.split(b"\r\n")[0] + b" " + body)
            answer = b'{"n": %d}' % len(seen)
            writer.write(b"HTTP/1.1 201 Created\r\nContent-Length: %d\r\n\r\n" % len(answer))
            writer.write(answer)
            await writer.drain()

    server = await asyncio.start_server(serve, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Http1Pool(f"http://127.0.0.1:{port}", {"X-Key": "k"}) as pool:
        assert await pool.request("POST", "/v1/batch", b"[1]", "application/json") == (
            201,
            b'{"n": 1}',
        )
        assert await pool.request("GET", "/v1/accounts/a.com") == (201, b'{"n": 2}')
    assert seen == [b"POST /v1/batch HTTP/1.1 [1]", b"GET /v1/accounts/a.com HTTP/1.1 "]
    assert connections == 1


def test_response_heads() -> None:
    assert _parse_head(b"HTTP/1.1 200 OK\r\nContent-Length: 12\r\n\r\n") == (200, 12, False)
    assert _parse_head(b"HTTP/1.1 503 X\r\nconnection: close\r\n\r\n") == (503, 0, True)
    with pytest.raises(ValueError, match="chunked"):
        _parse_head(b"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n")
    with pytest.raises(ValueError, match="only http"):
        Http1Pool("https://example.com")


async def test_a_connection_the_server_closed_while_idle_is_replaced() -> None:
    answered = 0

    async def serve_once(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        nonlocal answered
        await reader.readuntil(b"\r\n\r\n")
        answered += 1
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok")
        await writer.drain()
        writer.close()  # an idle keep-alive connection timing out, without saying so
        await writer.wait_closed()

    server = await asyncio.start_server(serve_once, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    async with server, Http1Pool(f"http://127.0.0.1:{port}") as pool:
        assert await pool.request("GET", "/a") == (200, b"ok")
        await asyncio.sleep(0.05)
        assert await pool.request("GET", "/b") == (200, b"ok")
    assert answered == 2
