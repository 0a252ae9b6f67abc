"""POST /v1/events (our own schemas) and rejected single calls, on the real broker."""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx
import pytest
from prometheus_client import REGISTRY

from schemas import topics
from schemas.events import decode_event
from services.kit.broker import EmbeddedBroker
from tests.harness import consume_all
from tests.integration.test_ingest_http import KEY, ingest, page  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def won(event_id: str, **extra: Any) -> dict[str, Any]:
    return {"type": "opportunity_won", "event_id": event_id, "account": "acme.com",
            "occurred_at": "2026-05-01T10:00:00Z", "opportunity_id": "o-1", "amount": 500,
            **extra}  # fmt: skip


async def test_native_batch_produces_good_events_and_dead_letters_bad_ones(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
) -> None:
    bad = won("w-bad", amount=-1)
    meeting = {"type": "meeting_held", "event_id": "m-1", "occurred_at": "2026-05-01T09:00:00Z",
               "attendees": ["jo@initech.io"], "account": "Initech.io"}  # fmt: skip
    body = {"events": [won("w-1"), bad, meeting, won("w-1"), "nope"]}
    sent = json.dumps(body, indent=1).encode()  # spelled as no re-encoding would spell it
    headers = {"Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest}/v1/events", content=sent, headers=headers, auth=(KEY, "")
        )
    assert response.status_code == 200, response.text
    answer = response.json()
    assert (answer["accepted"], answer["duplicates"]) == (2, 1)
    assert [(r["index"], r["messageId"], r["field"]) for r in answer["rejected"]] == [
        (1, "w-bad", "amount"),
        (4, None, "event"),
    ]
    produced = await consume_all(broker.bootstrap, topics.EVENTS.name, 2)
    events = sorted((decode_event(r.value) for r in produced), key=lambda e: e.event_id)
    assert [(e.event_id, e.type, e.account, e.source) for e in events] == [
        ("m-1", "meeting_held", "initech.io", "website"),
        ("w-1", "opportunity_won", "acme.com", "website"),
    ]
    dead = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 2)
    # As they were sent, byte for byte: found again in the body.
    bad_as_sent = json.dumps(bad, indent=1).replace("\n", "\n  ").encode()
    assert bad_as_sent in sent
    assert sorted(r.value for r in dead) == sorted([bad_as_sent, b'"nope"'])
    assert {dict(r.headers)[topics.HEADER_SOURCE] for r in dead} == {b"website"}


async def test_native_batch_takes_gzip_a_body_key_and_corrects_clock_skew(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
) -> None:
    # The sender's clock is one hour ahead: what it calls 10:00 happened around 09:00 ours.
    body = {"events": [won("w-skew")], "sent_at": "2026-05-01T11:00:00Z", "writeKey": KEY}
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest}/v1/events", content=gzip.compress(json.dumps(body).encode()), headers=headers
        )
    assert response.status_code == 200 and response.json()["accepted"] == 1
    [record] = await consume_all(broker.bootstrap, topics.EVENTS.name, 1)
    event = decode_event(record.value)
    # received - (sent - occurred) = received - 1 h
    assert (event.received_at - event.occurred_at).total_seconds() == 3600


@pytest.mark.parametrize(
    ("content", "auth", "status", "field"),
    [
        (json.dumps({"events": []}), None, 401, "writeKey"),
        (json.dumps({"events": [], "writeKey": "wrong"}), None, 401, "writeKey"),
        ("{not json", (KEY, ""), 400, "body"),
        (json.dumps({"batch": []}), (KEY, ""), 400, "events"),
        (json.dumps({"events": [], "sent_at": "soon"}), (KEY, ""), 400, "sent_at"),
        (json.dumps({"events": [], "pad": "x" * 600_000}), (KEY, ""), 413, "body"),
        (json.dumps({"events": [{}] * 2501}), (KEY, ""), 413, "events"),
    ],
)
async def test_unusable_native_requests_get_a_clear_error(
    ingest: str,  # noqa: F811
    content: str,
    auth: tuple[str, str] | None,
    status: int,
    field: str,
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest}/v1/events", content=content, auth=auth)
    assert response.status_code == status
    assert response.json()["field"] == field and response.json()["reason"]


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        (
            "/v1/track",
            {"messageId": "t-bad", "event": "NPS Submitted", "properties": {"score": 42}},
            "score",
        ),
        ("/v1/page", {"messageId": "p-bad", "type": "track", "event": "Ad Clicked"}, "type"),
        ("/v1/identify", {"traits": {"email": "jo@initech.io"}}, "messageId"),
        ("/v1/t", {"messageId": "b-bad", "type": "page", "properties": {"url": 7}}, "url"),
    ],
)
async def test_a_rejected_single_call_is_a_400_and_dead_lettered(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
    path: str,
    body: dict[str, Any],
    field: str,
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest}{path}", json={**body, "writeKey": KEY})
    assert response.status_code == 400
    assert response.json()["field"] == field
    [dead] = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 1)
    # The message as sent, without its write key (a credential); the beacon adds the
    # request's user agent to the context.
    kept = {k: v for k, v in json.loads(dead.value).items() if k not in ("type", "context")}
    assert kept == {k: v for k, v in body.items() if k != "type"}
    assert dict(dead.headers)[topics.HEADER_REASON].startswith(f"{field}:".encode())
    assert dict(dead.headers)[topics.HEADER_SOURCE] == b"website"


async def test_bot_events_are_counted_per_route(ingest: str) -> None:  # noqa: F811
    def bots(route: str) -> float:
        return REGISTRY.get_sample_value("abm_ingest_bot_events_total", {"route": route}) or 0.0

    googlebot = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
    human = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"
    segment = {"batch": [page(context={"userAgent": googlebot, "groupId": "acme.com"}),
                         page(context={"userAgent": human, "groupId": "acme.com"})]}  # fmt: skip
    native = {"events": [won("w-bot", is_bot=True), won("w-human")]}
    before = bots("/v1/batch"), bots("/v1/events")
    async with httpx.AsyncClient() as client:
        for path, body in (("/v1/batch", segment), ("/v1/events", native)):
            response = await client.post(f"{ingest}{path}", json=body, auth=(KEY, ""))
            assert response.status_code == 200 and response.json()["accepted"] == 2
    assert (bots("/v1/batch") - before[0], bots("/v1/events") - before[1]) == (1, 1)
