"""The real Snowplow Python tracker (POST and GET emitters) against ingest, real broker."""

from __future__ import annotations

import asyncio
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
