"""The tag's script and beacon endpoint over HTTP, on the real broker."""

from __future__ import annotations

import json

import httpx
import pytest

from schemas import topics
from schemas.events import decode_event
from services.kit.broker import EmbeddedBroker
from tests.harness import consume_all
from tests.integration.test_ingest_http import KEY, ingest  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

ORIGIN = "https://www.customer.example"


async def test_the_tag_is_javascript_with_caching_headers(ingest: str) -> None:  # noqa: F811
    async with httpx.AsyncClient() as client:
        script = await client.get(f"{ingest}/t.js")
        assert script.status_code == 200
        assert script.headers["content-type"].startswith("application/javascript")
        assert "max-age=" in script.headers["cache-control"]
        assert "sendBeacon" in script.text and "/p.gif?" in script.text
        again = await client.get(
            f"{ingest}/t.js", headers={"If-None-Match": script.headers["etag"]}
        )
        assert again.status_code == 304 and again.content == b""


async def test_beacon_preflight_and_post_reflect_the_origin(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
) -> None:
    message = {
        "type": "page",
        "messageId": "b-1",
        "anonymousId": "vid-1",
        "writeKey": KEY,
        "properties": {"url": "https://www.customer.example/"},
        "context": {"groupId": "acme.com"},
    }
    async with httpx.AsyncClient() as client:
        preflight = await client.options(
            f"{ingest}/v1/t",
            headers={"Origin": ORIGIN, "Access-Control-Request-Method": "POST"},
        )
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == ORIGIN
        assert "POST" in preflight.headers["access-control-allow-methods"]
        beacon = await client.post(
            f"{ingest}/v1/t",
            content=json.dumps(message),
            headers={"Origin": ORIGIN, "Content-Type": "text/plain"},
        )
        assert beacon.status_code == 200 and beacon.json()["accepted"] == 1
        assert beacon.headers["access-control-allow-origin"] == ORIGIN
        refused = await client.post(
            f"{ingest}/v1/t", json={**message, "writeKey": "nope"}, headers={"Origin": ORIGIN}
        )
        assert refused.status_code == 401
        assert refused.headers["access-control-allow-origin"] == ORIGIN
    [record] = await consume_all(broker.bootstrap, topics.EVENTS.name, 1)
    event = decode_event(record.value)
    assert (event.type, event.account, event.anonymous_id) == ("page_viewed", "acme.com", "vid-1")
