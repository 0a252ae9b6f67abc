"""The database that holds the write keys fails while ingest runs, on a real HTTP server.

How the outage is made: ingest reaches PostgreSQL through a TCP relay the test controls.
``down`` closes the relay's port (connections refused) and drops the open connections, as
a stopped database does; ``hung`` keeps every connection open and forwards nothing, as a
stalled or partitioned database does, which only ingest's own lookup timeout can bound.

Asserted: the routes that can answer errors say 503 with Retry-After, within a bounded
time; the pixels answer their GIF and count the failure; once the database is back, keys
are checked again (no failure was cached).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from typing import Literal

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy.engine import make_url

from services.ingest.app import create_app
from services.ingest.routes import KEY_LOOKUP_FAILED
from services.ingest.settings import IngestSettings
from services.kit import db
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.credentials import store_write_key
from services.kit.runner import quiet_server
from tests.harness import wait_until_ready
from tests.integration.test_ingest_http import KEY, page

pytestmark = pytest.mark.integration

TP2 = "/com.snowplowanalytics.snowplow/tp2"
LOOKUP_TIMEOUT_S = 0.5

Outage = Literal["down", "hung"]


class DatabaseRelay:
    """A TCP relay to the database that the test can cut (``down``) or silence (``hung``)."""

    def __init__(self, host: str, port: int) -> None:
        self._target = (host, port)
        self._server: asyncio.Server | None = None
        self._pipes: set[asyncio.Task[None]] = set()
        self._writers: set[asyncio.StreamWriter] = set()
        self.port = free_port()
        self.hung = False

    async def open(self) -> None:
        self.hung = False
        self._server = await asyncio.start_server(self._relay, "127.0.0.1", self.port)

    async def fail(self, outage: Outage) -> None:
        if outage == "hung":
            self.hung = True
            for pipe in self._pipes:  # the open connections stay open, and go silent
                pipe.cancel()
            return
        assert self._server is not None
        self._server.close()  # new connections refused
        for writer in self._writers:
            writer.close()
        await self._server.wait_closed()

    async def close(self) -> None:
        for pipe in self._pipes:
            pipe.cancel()
        for writer in self._writers:
            writer.close()
        if self._server is not None:
            self._server.close()

    async def _relay(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self._writers.add(writer)
        if self.hung:
            return  # accepted, never answered
        upstream_reader, upstream_writer = await asyncio.open_connection(*self._target)
        self._writers.add(upstream_writer)
        for source, sink in ((reader, upstream_writer), (upstream_reader, writer)):
            pipe = asyncio.create_task(_copy(source, sink))
            self._pipes.add(pipe)
            pipe.add_done_callback(self._pipes.discard)


async def _copy(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
    with contextlib.suppress(ConnectionError):
        while chunk := await source.read(65536):
            sink.write(chunk)
            await sink.drain()
    sink.close()


@pytest.fixture
async def relay(pg_url: str) -> AsyncIterator[DatabaseRelay]:
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await store_write_key(session, KEY, "website")
    await engine.dispose()
    url = make_url(pg_url)
    opened = DatabaseRelay(url.host or "127.0.0.1", url.port or 5432)
    await opened.open()
    yield opened
    await opened.close()


@pytest.fixture
async def ingest_via_relay(
    pg_url: str, relay: DatabaseRelay, broker: EmbeddedBroker
) -> AsyncIterator[str]:
    """Ingest whose database is behind the relay; write keys are never cached."""
    url = make_url(pg_url).set(host="127.0.0.1", port=relay.port)
    port = free_port()
    settings = IngestSettings(
        database_url=url.render_as_string(hide_password=False),
        kafka_bootstrap=broker.bootstrap,
        ingest_port=port,
        ingest_write_key_cache_s=0,
        ingest_write_key_timeout_s=LOOKUP_TIMEOUT_S,
    )
    server = quiet_server(create_app(settings), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await wait_until_ready(f"http://127.0.0.1:{port}")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def _failed_lookups(event_type: str) -> float:
    labels = {"type": event_type, "outcome": KEY_LOOKUP_FAILED}
    return REGISTRY.get_sample_value("abm_ingest_events_total", labels) or 0.0


@pytest.mark.parametrize("outage", ["down", "hung"])
async def test_without_the_database_senders_get_503_and_pixels_their_gif(
    ingest_via_relay: str, relay: DatabaseRelay, outage: Outage
) -> None:
    url = ingest_via_relay
    pixels_before = (_failed_lookups("page_viewed"), _failed_lookups("snowplow"))
    snowplow = {"data": [{"e": "pv", "eid": "sp-1", "url": "https://x.io/", "aid": KEY}]}
    await relay.fail(outage)
    async with httpx.AsyncClient(timeout=10) as client:
        requests = {
            "/v1/batch": client.post(f"{url}/v1/batch", json={"batch": [page()]}, auth=(KEY, "")),
            "/v1/page": client.post(f"{url}/v1/page", json=page(), auth=(KEY, "")),
            "/v1/events": client.post(f"{url}/v1/events", json={"events": []}, auth=(KEY, "")),
            "/v1/t": client.post(f"{url}/v1/t", json={**page(), "writeKey": KEY}),
            TP2: client.post(f"{url}{TP2}", json=snowplow),
            "/p.gif": client.get(f"{url}/p.gif", params={"k": KEY, "url": "https://x.io/"}),
            "/i": client.get(f"{url}/i", params={"k": KEY, "e": "pv", "url": "https://x.io/"}),
        }
        started = time.monotonic()
        answers = dict(zip(requests, await asyncio.gather(*requests.values()), strict=True))
        elapsed = time.monotonic() - started
    assert elapsed < LOOKUP_TIMEOUT_S + 1, f"answered in {elapsed:.2f}s: the lookup is bounded"
    for route in ("/v1/batch", "/v1/page", "/v1/events", "/v1/t", TP2):
        answer = answers[route]
        assert answer.status_code == 503, (route, answer.text)
        assert int(answer.headers["retry-after"]) > 0
        assert answer.json()["field"] in ("writeKey", "k")
    for route in ("/p.gif", "/i"):
        pixel = answers[route]
        assert (pixel.status_code, pixel.headers["content-type"], len(pixel.content)) == (
            200,
            "image/gif",
            43,
        )
    assert (_failed_lookups("page_viewed"), _failed_lookups("snowplow")) == (
        pixels_before[0] + 1,
        pixels_before[1] + 1,
    )


async def test_once_the_database_is_back_keys_are_checked_again(
    ingest_via_relay: str, relay: DatabaseRelay
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        await relay.fail("down")
        down = await client.post(f"{ingest_via_relay}/v1/page", json=page(), auth=(KEY, ""))
        await relay.open()
        back = await client.post(f"{ingest_via_relay}/v1/page", json=page(), auth=(KEY, ""))
    assert (down.status_code, back.status_code) == (503, 200), (down.text, back.text)
