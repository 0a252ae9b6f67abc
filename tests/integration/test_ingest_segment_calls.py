"""Segment single calls and the real Segment Python client, on the real broker."""

from __future__ import annotations

import asyncio
import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from segment.analytics import Client

from schemas import topics
from schemas.events import decode_event
from services.kit.broker import EmbeddedBroker
from tests.harness import consume_all
from tests.integration.test_ingest_http import KEY, ingest  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration


def _track(**extra: Any) -> dict[str, Any]:
    return {
        "messageId": uuid.uuid4().hex,
        "anonymousId": "v1",
        "event": "Ad Clicked",
        "properties": {"campaign_id": "c-9"},
        "context": {"groupId": "acme.com"},
        "timestamp": "2026-05-01T10:00:00Z",
        **extra,
    }


async def test_single_calls_produce_like_the_batch(ingest: str, broker: EmbeddedBroker) -> None:  # noqa: F811
    calls = {
        "track": _track(),
        "page": {
            "messageId": "p-1",
            "anonymousId": "v1",
            "properties": {"url": "https://a.io/"},
            "context": {"groupId": "acme.com"},
        },
        "identify": {"messageId": "i-1", "anonymousId": "v2", "traits": {"email": "jo@initech.io"}},
        "group": {
            "messageId": "g-1",
            "anonymousId": "v2",
            "groupId": "globex.com",
            "traits": {"name": "Globex"},
        },
        "alias": {"messageId": "a-1", "previousId": "v2", "userId": "u-2"},
    }
    async with httpx.AsyncClient() as client:
        for call, body in calls.items():
            response = await client.post(f"{ingest}/v1/{call}", json=body, auth=(KEY, ""))
            assert response.status_code == 200, response.text
            assert response.json()["rejected"] == []
            assert response.json()["accepted"] == (0 if call == "alias" else 1)
    produced = await consume_all(broker.bootstrap, topics.EVENTS.name, 4)
    events = {decode_event(r.value).type: decode_event(r.value) for r in produced}
    assert {t: e.account for t, e in events.items()} == {
        "ad_clicked": "acme.com",
        "page_viewed": "acme.com",
        "contact_identified": "initech.io",
        "account_upserted": "globex.com",
    }


async def test_single_call_body_key_and_gzip(ingest: str, broker: EmbeddedBroker) -> None:  # noqa: F811
    raw = gzip.compress(json.dumps(_track(writeKey=KEY, messageId="gz-1")).encode())
    headers = {"Content-Encoding": "gzip", "Content-Type": "application/json"}
    async with httpx.AsyncClient() as client:
        response = await client.post(f"{ingest}/v1/track", content=raw, headers=headers)
    assert response.status_code == 200 and response.json()["accepted"] == 1
    [record] = await consume_all(broker.bootstrap, topics.EVENTS.name, 1)
    assert decode_event(record.value).event_id == "gz-1"


@pytest.mark.parametrize(
    ("call", "body", "auth", "status", "field"),
    [
        (
            "track",
            _track(properties={"campaign_id": "c", "channel": "radio"}),
            True,
            400,
            "channel",
        ),
        ("track", _track(event=""), True, 400, "event"),
        ("track", _track(messageId=None), True, 400, "messageId"),
        ("page", _track(type="track"), True, 400, "type"),
        ("track", _track(), False, 401, "writeKey"),
        ("track", _track(pad="x" * 40_000), True, 413, "body"),
    ],
)
async def test_a_rejected_single_call_is_a_400_with_field_and_reason(
    ingest: str,  # noqa: F811
    call: str,
    body: dict[str, Any],
    auth: bool,
    status: int,
    field: str,
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest}/v1/{call}", json=body, auth=(KEY, "") if auth else None
        )
    assert response.status_code == status
    assert response.json()["field"] == field and response.json()["reason"]


@pytest.mark.parametrize("auth", [True, False])
async def test_unknown_single_call_is_a_404_problem_naming_the_path(
    ingest: str,  # noqa: F811
    auth: bool,
) -> None:
    async with httpx.AsyncClient() as client:
        response = await client.post(
            f"{ingest}/v1/nope", json=_track(), auth=(KEY, "") if auth else None
        )
    assert response.status_code == 404, response.text
    problem = response.json()
    assert (problem["status"], problem["field"]) == (404, "path")
    assert "/v1/nope" in problem["reason"]


async def test_the_single_call_path_still_lists_its_calls_in_the_openapi_spec(
    ingest: str,  # noqa: F811
) -> None:
    async with httpx.AsyncClient() as client:
        spec = (await client.get(f"{ingest}/openapi.json")).json()
    [parameter] = spec["paths"]["/v1/{call}"]["post"]["parameters"][:1]
    assert parameter["schema"]["enum"] == ["track", "page", "identify", "group", "alias"]


def _send_with_segment_client(host: str, errors: list[Exception], moment: datetime) -> None:
    client = Client(
        KEY,
        host=host,
        sync_mode=True,
        max_retries=0,
        on_error=lambda error, _batch: errors.append(error),
    )
    client.identify("user-7", {"email": "ana@initech.io"}, anonymous_id="anon-7")
    client.group("user-7", "globex.com", {"name": "Globex", "employees": 1200})
    client.track(
        "user-7",
        "Intent Signal",
        {"topic": "crm", "score": 0.8, "source": "bombora"},
        context={"groupId": "acme.com"},
        timestamp=moment,
    )
    client.page(
        "user-7",
        name="Pricing",
        properties={"url": "https://x.io/pricing"},
        anonymous_id="anon-7",
        timestamp=moment,
    )
    # sync_mode posts each call before returning (its shutdown() fails without consumers)


async def test_the_real_segment_client_lands_on_the_topic(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
) -> None:
    errors: list[Exception] = []
    moment = datetime.now(UTC) - timedelta(hours=3)
    await asyncio.to_thread(_send_with_segment_client, ingest, errors, moment)
    assert errors == []
    produced = await consume_all(broker.bootstrap, topics.EVENTS.name, 4)
    events = {decode_event(r.value).type: decode_event(r.value) for r in produced}
    assert {t: (e.account, e.source) for t, e in events.items()} == {
        "contact_identified": ("initech.io", "website"),
        "account_upserted": ("globex.com", "website"),
        "intent_signal_received": ("acme.com", "website"),
        "page_viewed": ("initech.io", "website"),  # the visitor identified in this request
    }
    for kind in ("intent_signal_received", "page_viewed"):
        skew = abs(events[kind].occurred_at - moment)
        assert skew < timedelta(seconds=5), (kind, skew)
        assert events[kind].received_at - events[kind].occurred_at > timedelta(hours=2)
    assert events["account_upserted"].employees == 1200
