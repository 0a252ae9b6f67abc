"""End to end: Segment batches posted to ingest move an account through all six stages,
visible through the API, on the real broker and real PostgreSQL."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from services.kit import db
from services.kit.credentials import seed_dev_credentials
from tests.harness import Stack, wait_until_ready

pytestmark = pytest.mark.e2e

WRITE_KEY = "e2e-write-key"
API_TOKEN = "e2e-api-token"
ACCOUNT = "northwind-analytics.com"


async def seed(url: str) -> None:
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await seed_dev_credentials(session, WRITE_KEY, API_TOKEN)
    await engine.dispose()


def message(kind: str, at: datetime, **fields: Any) -> dict[str, Any]:
    return {
        "type": kind,
        "messageId": uuid.uuid4().hex,
        "timestamp": at.isoformat(),
        "anonymousId": "visitor-1",
        "context": {"groupId": ACCOUNT},
        **fields,
    }


def journey(start: datetime) -> list[tuple[str, list[dict[str, Any]]]]:
    """(expected stage, the calls that should move the account there)."""
    step = timedelta(days=3)
    return [
        ("target", [message("group", start, groupId=ACCOUNT, traits={
            "name": "Northwind Analytics", "industry": "Software", "country": "US",
            "employees": 800, "annual_revenue": 60_000_000, "technologies": ["salesforce"],
            "funding": "series_c", "target": True})]),
        ("engaged", [message("page", start + step, properties={"url": "https://us.example/pricing"})]),
        ("opportunity", [message("track", start + 2 * step, event="Opportunity Created",
                                 properties={"opportunity_id": "opp-1", "amount": 90_000})]),
        ("won", [message("track", start + 3 * step, event="Opportunity Won",
                         properties={"opportunity_id": "opp-1", "amount": 90_000})]),
        ("retention", [message("track", start + 30 * step, event="Subscription Renewed",
                               properties={"amount": 95_000, "term_end": "2027-12-31"})]),
        ("expansion", [message("track", start + 31 * step, event="Subscription Expanded",
                               properties={"amount": 40_000})]),
    ]  # fmt: skip


async def wait_for_stage(client: httpx.AsyncClient, api: str, stage: str) -> dict[str, Any]:
    body: dict[str, Any] = {}
    for _ in range(150):
        response = await client.get(
            f"{api}/v1/accounts/{ACCOUNT}", headers={"Authorization": f"Bearer {API_TOKEN}"}
        )
        if response.status_code == 200:
            body = response.json()
            if body["stage"] == stage:
                return body
        await asyncio.sleep(0.1)
    raise AssertionError(f"account never reached {stage}; last seen {body.get('stage')}")


async def test_account_walks_all_six_stages(services: Stack, pg_url: str) -> None:
    await seed(pg_url)
    for name in ("ingest", "intent", "funnel", "api"):
        services.start(name)
    ingest, api = services.url("ingest"), services.url("api")
    await wait_until_ready(ingest)
    await wait_until_ready(api)
    start = datetime.now(UTC) - timedelta(days=200)
    async with httpx.AsyncClient(timeout=10) as client:
        for stage, calls in journey(start):
            response = await client.post(
                f"{ingest}/v1/batch", json={"batch": calls}, auth=(WRITE_KEY, "")
            )
            assert response.status_code == 200, response.text
            assert response.json()["accepted"] == len(calls)
            await wait_for_stage(client, api, stage)
        account = await wait_for_stage(client, api, "expansion")
        timeline = await read_timeline(client, api)
        funnel = (
            await client.get(f"{api}/v1/funnel", headers={"Authorization": f"Bearer {API_TOKEN}"})
        ).json()
    history = [(t["from_stage"], t["to_stage"]) for t in account["stage_history"]]
    assert history == [
        (None, "target"), ("target", "engaged"), ("engaged", "opportunity"),
        ("opportunity", "won"), ("won", "retention"), ("retention", "expansion"),
    ]  # fmt: skip
    assert all(t["cause_event_ids"] for t in account["stage_history"])
    assert [s["reached"] for s in funnel["stages"]] == [1, 1, 1, 1, 1, 1]
    assert [e["type"] for e in timeline] == [
        "subscription_expanded", "subscription_renewed", "opportunity_won",
        "opportunity_created", "page_viewed", "account_upserted",
    ]  # fmt: skip
    causes = {c for t in account["stage_history"] for c in t["cause_event_ids"]}
    assert causes == {e["event_id"] for e in timeline}, "every stage change points at its event"


async def read_timeline(client: httpx.AsyncClient, api: str) -> list[dict[str, Any]]:
    """The whole timeline, two events a page, following the cursors."""
    events: list[dict[str, Any]] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (
            await client.get(
                f"{api}/v1/accounts/{ACCOUNT}/timeline",
                params=params,
                headers={"Authorization": f"Bearer {API_TOKEN}"},
            )
        ).json()
        events += page["items"]
        if page["next_cursor"] is None:
            return events
        params["cursor"] = page["next_cursor"]
