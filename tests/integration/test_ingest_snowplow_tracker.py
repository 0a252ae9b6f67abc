"""The real Snowplow Python tracker (POST and GET emitters) against ingest, real broker."""

from __future__ import annotations

import asyncio
import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
import requests
from snowplow_tracker import (
    Emitter,
    PageView,
    SelfDescribing,
    SelfDescribingJson,
    StructuredEvent,
    Subject,
    Tracker,
)

from schemas import topics
from schemas.events import decode_event
from services.kit.broker import EmbeddedBroker
from tests.harness import consume_all
from tests.integration.test_ingest_http import KEY, ingest  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

TP2 = "/com.snowplowanalytics.snowplow/tp2"

ACME = SelfDescribingJson("iglu:com.abm/account/jsonschema/1-0-0", {"groupId": "acme.com"})


def _track_all(tracker: Tracker, moment_ms: float) -> None:
    tracker.track(
        PageView("https://x.io/pricing", "Pricing", "https://g.co", true_timestamp=moment_ms)
    )
    tracker.track(StructuredEvent("ads", "Ad Clicked", label="c-42", context=[ACME]))
    tracker.track(StructuredEvent("video", "play"))  # no meaning for ABM: ignored
    intent = SelfDescribingJson(
        "iglu:com.abm/intent_signal/jsonschema/1-0-0",
        {"topic": "crm", "score": 0.9, "source": "bombora"},
    )
    tracker.track(SelfDescribing(intent, context=[ACME]))
    tracker.flush()


def _send(host: str, method: str, failures: list[Any], moment_ms: float) -> None:
    session = requests.Session()
    app_id = None
    if method == "post":
        session.params = {"k": KEY}  # the write key as a query parameter
    else:
        app_id = KEY  # the write key as the tracker's app id
    emitter = Emitter(
        host,
        protocol="http",
        method=method,
        batch_size=10,
        session=session,
        on_failure=lambda count, events: failures.append((count, events)),
    )
    subject = Subject().set_domain_user_id(f"duid-{method}")
    contact = SelfDescribingJson("iglu:com.abm/contact/jsonschema/1-0-0", {"email": "a@initech.io"})
    tracker = Tracker(f"ns-{method}", emitter, subject=subject, app_id=app_id)
    tracker.track(PageView("https://x.io/", context=[contact]))  # identifies duid-<method>
    _track_all(tracker, moment_ms)


@pytest.mark.parametrize("method", ["post", "get"])
async def test_the_real_snowplow_tracker_lands_on_the_topic(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
    method: str,
) -> None:
    failures: list[Any] = []
    moment = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    host = ingest.removeprefix("http://")
    await asyncio.to_thread(_send, host, method, failures, moment.timestamp() * 1000)
    assert failures == []
    produced = await consume_all(broker.bootstrap, topics.EVENTS.name, 4)
    events = [decode_event(r.value) for r in produced]
    assert sorted((e.type, e.account, e.anonymous_id, e.source) for e in events) == [
        ("ad_clicked", "acme.com", f"duid-{method}", "website"),
        ("intent_signal_received", "acme.com", f"duid-{method}", "website"),
        ("page_viewed", "initech.io", f"duid-{method}", "website"),
        ("page_viewed", "initech.io", f"duid-{method}", "website"),  # remembered visitor
    ]
    # The GET pixel reads the request's user agent (python-requests: a bot); a server-side
    # tracker's POST (platform pc) is judged by its payload only.
    assert {e.is_bot for e in events} == {method == "get"}
    [pricing] = [e for e in events if e.type == "page_viewed" and e.url.endswith("/pricing")]
    assert (pricing.occurred_at, pricing.title, pricing.referrer) == (
        moment,
        "Pricing",
        "https://g.co",
    )
    [click] = [e for e in events if e.type == "ad_clicked"]
    assert click.campaign_id == "c-42"
    assert abs(click.occurred_at - click.received_at) < timedelta(seconds=5)


async def test_snowplow_without_a_key_is_refused_but_the_pixel_still_answers(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
) -> None:
    body = {
        "schema": "iglu:com.snowplowanalytics.snowplow/payload_data/jsonschema/1-0-4",
        "data": [{"e": "pv", "url": "https://x.io/", "eid": "e-1"}],
    }
    async with httpx.AsyncClient() as client:
        refused = await client.post(f"{ingest}/com.snowplowanalytics.snowplow/tp2", json=body)
        assert refused.status_code == 401
        bad = await client.post(
            f"{ingest}/com.snowplowanalytics.snowplow/tp2?k={KEY}",
            json={"data": [{"url": "x", "eid": "e-2"}, body["data"][0]]},
        )
        assert bad.status_code == 200
        assert bad.json()["accepted"] == 1
        assert [(r["index"], r["messageId"], r["field"]) for r in bad.json()["rejected"]] == [
            (0, "e-2", "e")
        ]
        for query in ("", "?e=pv&aid=unknown", "?e=zz&cx=!!&k=" + KEY):
            pixel = await client.get(f"{ingest}/i{query}")
            assert pixel.status_code == 200 and len(pixel.content) == 43
            assert pixel.headers["cache-control"] == "no-cache, no-store, must-revalidate"
    assert len(await consume_all(broker.bootstrap, topics.EVENTS.name, 1)) == 1
    dead = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 2)
    assert len(dead) == 2  # the payload without e, the pixel hit with bad contexts


def _base64url(text: str) -> str:
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


@pytest.mark.parametrize(
    ("parameter", "field"), [("co", "co"), ("cx", "co"), ("ue_pr", "ue_pr"), ("ue_px", "ue_pr")]
)
async def test_json_parameters_nested_too_deeply_are_rejected_alone(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
    parameter: str,
    field: str,
) -> None:
    deep = "[" * 3000  # deeper than the JSON parser goes
    value = _base64url(deep) if parameter in ("cx", "ue_px") else deep
    payload = {"e": "ue", "eid": f"deep-{parameter}", parameter: value}
    good = {"e": "pv", "eid": "fine", "url": "https://x.io/", "duid": "v1"}
    async with httpx.AsyncClient() as client:
        posted = await client.post(f"{ingest}{TP2}?k={KEY}", json={"data": [payload, good]})
        pixel = await client.get(f"{ingest}/i", params={"k": KEY, **payload})
    assert posted.status_code == 200, posted.text
    assert (posted.json()["accepted"], posted.json()["rejected"][0]["field"]) == (1, field)
    assert (pixel.status_code, pixel.headers["content-type"], len(pixel.content)) == (
        200,
        "image/gif",
        43,
    )
    dead = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 2)
    reasons = [dict(record.headers)[topics.HEADER_REASON] for record in dead]
    assert all(reason.startswith(f"{field}:".encode()) for reason in reasons), reasons


async def test_dead_letters_never_hold_the_write_key(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
) -> None:
    """Whether the key came as ``k`` or as the app id ``aid``; another app id is kept."""
    bad = {"e": "pv", "url": "https://x.io/", "dtm": "yesterday"}  # rejected: dtm
    async with httpx.AsyncClient() as client:
        by_app_id = await client.post(
            f"{ingest}{TP2}", json={"data": [{**bad, "eid": "tp2-aid", "aid": KEY}]}
        )
        by_k = await client.post(
            f"{ingest}{TP2}?k={KEY}", json={"data": [{**bad, "eid": "tp2-k", "aid": "shop"}]}
        )
        assert [r.json()["rejected"][0]["field"] for r in (by_app_id, by_k)] == ["dtm", "dtm"]
        for key_parameters in ({"k": KEY, "aid": "shop"}, {"aid": KEY}):
            pixel = await client.get(f"{ingest}/i", params={**bad, **key_parameters})
            assert pixel.status_code == 200
    dead = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 4)
    assert len(dead) == 4
    for record in dead:
        assert KEY.encode() not in record.value, record.value
    kept = sorted(json.loads(record.value).get("aid", "-") for record in dead)
    assert kept == ["-", "-", "shop", "shop"]


async def test_the_browser_tracker_gets_cors_on_tp2(ingest: str) -> None:  # noqa: F811
    """The JS tracker posts JSON cross-origin with credentials: a preflight first."""
    origin = "https://www.acme.com"
    body = {"data": [{"e": "pv", "eid": "cors-1", "url": "https://www.acme.com/", "p": "web"}]}
    async with httpx.AsyncClient() as client:
        preflight = await client.options(
            f"{ingest}{TP2}",
            headers={
                "Origin": origin,
                "Access-Control-Request-Method": "POST",
                "Access-Control-Request-Headers": "content-type",
            },
        )
        posted = await client.post(f"{ingest}{TP2}?k={KEY}", json=body, headers={"Origin": origin})
        refused = await client.post(f"{ingest}{TP2}", json=body, headers={"Origin": origin})
    assert preflight.status_code == 204
    assert "POST" in preflight.headers["access-control-allow-methods"]
    assert "content-type" in preflight.headers["access-control-allow-headers"].lower()
    assert (posted.status_code, refused.status_code) == (200, 401)
    for response in (preflight, posted, refused):  # errors are readable by the page too
        assert response.headers["access-control-allow-origin"] == origin
        assert response.headers["access-control-allow-credentials"] == "true"
        assert "Origin" in response.headers["vary"]
