"""The change feed and the SSE stream over real HTTP on PostgreSQL."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from schemas.events import StageChanged, SurgeStarted
from services.kit import db
from services.kit.changes import record_changes
from services.kit.tables import account_transitions
from tests.api_server import READ, T0, record_surges_as_intent_does

pytestmark = pytest.mark.integration


async def test_change_feed_pages_in_order_and_holds_its_cursor_when_idle(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    seen: list[str] = []
    cursor = None
    for _ in range(20):
        params = {"limit": 7, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/changes", params=params, headers=READ)).json()
        seen += [item["event_id"] for item in page["items"]]
        if not page["items"]:
            assert page["next_cursor"] == cursor
            break
        cursor = page["next_cursor"]
    engine = db.create_engine(url=pg_url)
    async with engine.connect() as connection:
        expected = (
            (await connection.execute(select(account_transitions.c.event_id))).scalars().all()
        )
    await engine.dispose()
    assert sorted(seen) == sorted(expected) and len(seen) == len(set(seen)) == len(expected)
    bad = await api.get("/v1/changes", params={"cursor": "abc"}, headers=READ)
    assert bad.status_code == 400 and bad.json()["field"] == "cursor"


async def test_the_account_filter_reads_domains_as_every_domain_input(
    api: httpx.AsyncClient,
) -> None:
    async def changes(account: str) -> list[tuple[str, str]]:
        params = {"account": account, "limit": "100"}
        page = await api.get("/v1/changes", params=params, headers=READ)
        assert page.status_code == 200, page.text
        return [(item["account"], item["event_id"]) for item in page.json()["items"]]

    stored = await changes("acct01.com")
    assert stored and {account for account, _ in stored} == {"acct01.com"}
    assert await changes("Acct01.COM") == stored
    assert await changes("WWW.acct01.com") == stored


async def test_stream_pushes_new_changes_and_resumes_from_last_event_id(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    async def next_event(lines: AsyncIterator[str]) -> tuple[str, str]:
        sse_id, _, change = await next_sse(lines)
        return sse_id, change["event_id"]

    async with api.stream("GET", "/v1/stream", headers=READ, timeout=10) as response:
        assert response.headers["content-type"].startswith("text/event-stream")
        lines = response.aiter_lines()
        await record(pg_url, "live-1")
        first_id, first = await asyncio.wait_for(next_event(lines), 5)
        await record(pg_url, "live-2")
        assert (await asyncio.wait_for(next_event(lines), 5))[1] == "live-2"
    assert first == "live-1"  # only what happened after subscribing
    resumed_headers = {**READ, "Last-Event-ID": first_id}
    async with api.stream("GET", "/v1/stream", headers=resumed_headers, timeout=10) as response:
        assert (await asyncio.wait_for(next_event(response.aiter_lines()), 5))[1] == "live-2"


async def test_a_surge_reaches_the_feed_and_the_stream_in_order_with_a_stage_change(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    cursor = await end_of_feed(api)
    surge = SurgeStarted(event_id="surge-live", occurred_at=T0, received_at=T0,
                         account="acct05.com", source="intent", topic="pricing", score=91,
                         baseline=1, observed=14, detector_version="t",
                         trigger_event_ids=["signal-1"])  # fmt: skip
    async with api.stream("GET", "/v1/stream", headers=READ, timeout=10) as response:
        lines = response.aiter_lines()
        await record(pg_url, "stage-before-surge")
        await record_surges_as_intent_does(pg_url, [surge])
        stage_sse_id, stage_type, _ = await asyncio.wait_for(next_sse(lines), 5)
        surge_sse_id, surge_type, streamed = await asyncio.wait_for(next_sse(lines), 5)
    assert (stage_type, surge_type) == ("stage_changed", "surge_started")
    assert streamed == surge.model_dump(mode="json", exclude_none=True)

    page = (await api.get("/v1/changes", params={"cursor": cursor}, headers=READ)).json()
    assert [(c["type"], c["event_id"]) for c in page["items"]] == [
        ("stage_changed", "stage-before-surge"),
        ("surge_started", "surge-live"),
    ]
    # One shape of a change on the feed and the stream (and in webhooks): absent fields
    # left out, not null.
    assert page["items"][1] == streamed
    assert page["next_cursor"] == surge_sse_id  # the stream's ids are the feed's cursors
    after_stage = {"cursor": stage_sse_id}
    rest = (await api.get("/v1/changes", params=after_stage, headers=READ)).json()
    assert [c["event_id"] for c in rest["items"]] == ["surge-live"]
    by_account = {"account": "acct05.com", "cursor": cursor}
    mine = (await api.get("/v1/changes", params=by_account, headers=READ)).json()
    assert [c["event_id"] for c in mine["items"]] == ["surge-live"]


async def end_of_feed(api: httpx.AsyncClient) -> str | None:
    """The cursor after every change recorded so far."""
    cursor = None
    while True:
        params = {"limit": 100, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/changes", params=params, headers=READ)).json()
        if not page["items"]:
            return cursor
        cursor = page["next_cursor"]


async def next_sse(lines: AsyncIterator[str]) -> tuple[str, str, dict[str, Any]]:
    """The next Server-Sent Event: its id, its event name, its data."""
    event_id = event = ""
    async for line in lines:
        if line.startswith("id: "):
            event_id = line[4:]
        elif line.startswith("event: "):
            event = line[7:]
        elif line.startswith("data: "):
            return event_id, event, json.loads(line[6:])
    raise AssertionError("stream ended")


async def record(url: str, event_id: str) -> None:
    change = StageChanged(
        event_id=event_id,
        occurred_at=T0,
        received_at=T0,
        account="acct01.com",
        source="funnel",
        from_stage="engaged",
        to_stage="opportunity",
        rule="opportunity_opened",
        config_version="v",
    )
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await record_changes(session, [change])
    await engine.dispose()
