"""Ingest over real HTTP on the real broker: what is acknowledged is on the topic."""

from __future__ import annotations

import asyncio
import base64
import gzip
import json
import re
import uuid
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from schemas import topics
from schemas.events import decode_event
from services.ingest.app import create_app
from services.ingest.settings import IngestSettings
from services.kit import db
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.credentials import store_write_key
from services.kit.runner import quiet_server
from tests.harness import consume_all, wait_until_ready

pytestmark = pytest.mark.integration

KEY = "site-key"


@pytest.fixture
async def ingest(sqlite_url: str, broker: EmbeddedBroker) -> AsyncIterator[str]:
    engine = db.create_engine(url=sqlite_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await store_write_key(session, KEY, "website")
    await engine.dispose()
    port = free_port()
    settings = IngestSettings(database_url=sqlite_url, kafka_bootstrap=broker.bootstrap,
                              ingest_port=port, ingest_ack_timeout_s=1.5)  # fmt: skip
    server = quiet_server(create_app(settings), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await wait_until_ready(f"http://127.0.0.1:{port}")
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    await task


def page(account: str | None = "acme.com", **extra: Any) -> dict[str, Any]:
    context = {"groupId": account} if account else {}
    return {"type": "page", "messageId": uuid.uuid4().hex, "anonymousId": "v1",
            "timestamp": "2026-05-01T10:00:00Z", "properties": {"url": "https://x.io/pricing"},
            "context": context, **extra}  # fmt: skip


async def test_good_events_are_produced_and_bad_ones_dead_lettered(
    ingest: str, broker: EmbeddedBroker
) -> None:
    bad = {"type": "track", "messageId": "bad-1", "event": "NPS Submitted",
           "properties": {"score": 42}, "context": {"groupId": "acme.com"}}  # fmt: skip
    body = {"batch": [page(), bad, page("initech.io")], "sentAt": "2026-05-01T10:00:00Z"}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest}/v1/batch", json=body, auth=(KEY, ""))
    assert response.status_code == 200
    assert response.json()["accepted"] == 2
    assert response.json()["rejected"] == [
        {
            "index": 1,
            "messageId": "bad-1",
            "field": "score",
            "reason": response.json()["rejected"][0]["reason"],
        }
    ]
    produced = await consume_all(broker.bootstrap, topics.EVENTS.name, 2)
    events = sorted((decode_event(r.value) for r in produced), key=lambda e: e.account or "")
    assert [(e.type, e.account, e.source) for e in events] == [
        ("page_viewed", "acme.com", "website"),
        ("page_viewed", "initech.io", "website"),
    ]
    assert {r.key for r in produced} == {b"acme.com", b"initech.io"}
    dead = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 1)
    headers = dict(dead[0].headers)
    assert json.loads(dead[0].value)["messageId"] == "bad-1"
    assert headers[topics.HEADER_REASON].startswith(b"score:")
    assert headers[topics.HEADER_SOURCE] == b"website"


async def test_gzip_bodies_and_body_write_keys_are_accepted(ingest: str) -> None:
    raw = gzip.compress(json.dumps({"batch": [page()], "writeKey": KEY}).encode())
    async with httpx.AsyncClient() as client:
        headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
        response = await client.post(f"{ingest}/v1/batch", content=raw, headers=headers)
    assert response.status_code == 200 and response.json()["accepted"] == 1


@pytest.mark.parametrize(
    ("content", "auth", "status", "field"),
    [
        (json.dumps({"batch": []}), None, 401, "writeKey"),
        (json.dumps({"batch": []}), ("wrong", ""), 401, "writeKey"),
        ("{not json", (KEY, ""), 400, "body"),
        (json.dumps({"batch": {"a": 1}}), (KEY, ""), 400, "batch"),
        (json.dumps([1, 2]), (KEY, ""), 400, "body"),
        (json.dumps({"batch": [], "pad": "x" * 600_000}), (KEY, ""), 413, "body"),
        (json.dumps({"batch": [{}] * 2501}), (KEY, ""), 413, "batch"),
    ],
)
async def test_unusable_requests_get_a_clear_error(
    ingest: str, content: str, auth: tuple[str, str] | None, status: int, field: str
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest}/v1/batch", content=content, auth=auth)
    assert response.status_code == status
    assert response.json()["field"] == field and response.json()["reason"]


async def test_pixel_always_answers_the_gif_and_produces_with_a_key(
    ingest: str, broker: EmbeddedBroker
) -> None:
    async with httpx.AsyncClient() as client:
        timed_before = await _pixels_timed(client, ingest)
        for query in (
            "",
            "?k=unknown",
            "?k=site-key&url=https://x.io/a&gid=Globex.com&aid=v7&mid=p1",
        ):
            response = await client.get(f"{ingest}/p.gif{query}")
            assert response.status_code == 200
            assert response.headers["content-type"] == "image/gif"
            assert len(response.content) == 43
            assert response.headers["cache-control"] == "no-cache, no-store, must-revalidate"
        head = await client.head(f"{ingest}/p.gif?k=unknown")
        assert (head.status_code, head.headers["content-type"], head.content) == (
            200,
            "image/gif",
            b"",
        )
        # Served in front of routing, yet timed under its route like any other request.
        assert await _pixels_timed(client, ingest) == timed_before + 4
    [record] = await consume_all(broker.bootstrap, topics.EVENTS.name, 1)
    event = decode_event(record.value)
    assert (event.type, event.account, event.anonymous_id, event.event_id) == (
        "page_viewed",
        "globex.com",
        "v7",
        "p1",
    )


async def _pixels_timed(client: httpx.AsyncClient, ingest: str) -> float:
    text = (await client.get(f"{ingest}/metrics")).text
    found = re.search(
        r'^abm_ingest_request_seconds_count\{route="/p\.gif",status="200"\} (\S+)$', text, re.M
    )
    return float(found.group(1)) if found else 0.0


async def test_broker_down_means_503_with_retry_after_and_not_ready(
    ingest: str, broker: EmbeddedBroker
) -> None:
    async with httpx.AsyncClient(timeout=10) as client:
        assert (await client.get(f"{ingest}/readyz")).status_code == 200
        broker.stop()
        response = await client.post(f"{ingest}/v1/batch", json={"batch": [page()]}, auth=(KEY, ""))
        assert response.status_code == 503
        assert int(response.headers["retry-after"]) > 0
        assert (await client.get(f"{ingest}/readyz")).status_code == 503


async def test_a_pixel_carries_a_track_call_in_data_and_a_bad_one_is_dead_lettered(
    ingest: str, broker: EmbeddedBroker
) -> None:
    properties = {"campaign_id": "q3-cfo", "channel": "email_signature"}
    impression = {"type": "track", "event": "Ad Impression", "messageId": "imp-1",
                  "properties": properties}  # fmt: skip
    good = base64.urlsafe_b64encode(json.dumps(impression).encode()).decode().rstrip("=")
    async with httpx.AsyncClient() as client:
        for query in (f"k={KEY}&gid=acme.com&data={good}", f"k={KEY}&gid=acme.com&data=%5B1%5D"):
            response = await client.get(f"{ingest}/p.gif?{query}")
            assert (response.status_code, len(response.content)) == (200, 43)
    [record] = await consume_all(broker.bootstrap, topics.EVENTS.name, 1)
    event = decode_event(record.value)
    assert (event.type, event.account, event.event_id, getattr(event, "campaign_id", None)) == (
        "ad_impressed",
        "acme.com",
        "imp-1",
        "q3-cfo",
    )
    [dead] = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 1)
    assert dict(dead.headers)[topics.HEADER_REASON].startswith(b"data:")
    assert json.loads(dead.value)["data"] == "[1]"
    assert KEY.encode() not in dead.value  # the write key never reaches a dead letter


def _nested(depth: int) -> str:
    return "[" * depth + "]" * depth


@pytest.mark.parametrize(
    "path",
    ["/v1/batch", "/v1/events", "/v1/track", "/v1/t", "/com.snowplowanalytics.snowplow/tp2"],
)
async def test_a_body_nested_deeper_than_the_parser_goes_is_a_400(ingest: str, path: str) -> None:
    content = '{"batch": ' + _nested(5000) + "}"  # 10 KB
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest}{path}", content=content, auth=(KEY, ""))
    assert response.status_code == 400, response.text
    assert response.json()["field"] == "body"


@pytest.mark.parametrize("depth", [200, 600, 900, 950, 980, 1000, 1100])
async def test_no_nesting_depth_in_a_message_is_a_server_error(ingest: str, depth: int) -> None:
    """Around the parser's limit a body may parse, then nest too deeply for what follows."""
    message = '{"type": "page", "messageId": "deep", "properties": {"x": ' + _nested(depth) + "}}"
    async with httpx.AsyncClient() as client:
        batch = await client.post(
            f"{ingest}/v1/batch", content='{"batch": [' + message + "]}", auth=(KEY, "")
        )
        single = await client.post(f"{ingest}/v1/page", content=message, auth=(KEY, ""))
    # Accepted, or rejected (a 400 for a single call, listed for a batch); never a 5xx.
    assert (batch.status_code, single.status_code) in ((200, 200), (200, 400), (400, 400))


@pytest.mark.parametrize(
    ("path", "body"),
    [
        ("/v1/batch", {"batch": [{"type": "page", "messageId": 5}]}),
        ("/com.snowplowanalytics.snowplow/tp2", {"data": [{"e": "pv", "eid": 1e-09}]}),
    ],
)
async def test_a_message_id_that_is_not_a_string_is_listed_as_none(
    ingest: str, path: str, body: dict[str, Any]
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest}{path}?k={KEY}", json=body, auth=(KEY, ""))
    assert response.status_code == 200, response.text
    [rejected] = response.json()["rejected"]
    assert (rejected["index"], rejected["messageId"]) == (0, None)
