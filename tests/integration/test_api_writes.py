"""API writes land on the events topic after the broker's ack; admin manages credentials."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from schemas import topics
from schemas.events import decode_event
from services.funnel.timeline import Timeline
from services.kit import db
from services.kit.broker import EmbeddedBroker
from services.kit.credentials import scopes_for_token, source_for_write_key, store_api_token
from tests.api_server import serving
from tests.harness import consume_all

pytestmark = pytest.mark.integration

ADMIN = {"Authorization": "Bearer root"}
WRITER = {"Authorization": "Bearer writer"}


@pytest.fixture
async def api(pg_url: str, broker: EmbeddedBroker) -> AsyncIterator[httpx.AsyncClient]:
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await store_api_token(session, "root", "ops", frozenset({"admin", "read"}))
        await store_api_token(session, "writer", "crm", frozenset({"write"}))
    await engine.dispose()
    async with serving(
        pg_url, kafka_bootstrap=broker.bootstrap, api_write_timeout_s=2, api_token_cache_s=0
    ) as client:
        yield client


async def test_writes_become_events_keyed_by_account(
    api: httpx.AsyncClient, broker: EmbeddedBroker
) -> None:
    account = await api.put(
        "/v1/accounts/WWW.Globex.com",
        headers={**WRITER, "Idempotency-Key": "crm-42"},
        json={"name": "Globex", "employees": 900, "target": True},
    )
    assert account.status_code == 202 and account.json() == {
        "event_id": "crm-42",
        "type": "account_upserted",
    }
    opportunity = await api.post(
        "/v1/opportunities",
        headers=WRITER,
        json={"account": "globex.com", "opportunity_id": "o-1", "status": "won", "amount": 12000},
    )
    assert opportunity.status_code == 202
    records = await consume_all(broker.bootstrap, topics.EVENTS.name, 2)
    events = {decode_event(r.value).type: (r.key, decode_event(r.value)) for r in records}
    key, upserted = events["account_upserted"]
    assert (
        key == b"globex.com" and upserted.event_id == "crm-42" and upserted.account == "globex.com"
    )
    assert events["opportunity_won"][1].amount == 12000


async def test_the_timeline_shows_api_writes_were_named_by_the_api(
    api: httpx.AsyncClient, broker: EmbeddedBroker, pg_url: str
) -> None:
    """The writer names the account itself: provenance "api", full confidence, kept on the
    event through the funnel's timeline to the API's timeline items."""
    written = await api.put("/v1/accounts/globex.com", headers=WRITER, json={"name": "Globex"})
    assert written.status_code == 202
    contact = await api.post(
        "/v1/contacts", headers=WRITER, json={"account": "globex.com", "email": "a@globex.com"}
    )
    assert contact.status_code == 202
    records = await consume_all(broker.bootstrap, topics.EVENTS.name, 2)
    events = [decode_event(r.value) for r in records]
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await Timeline(retention_days=30).record(session, events)
    await engine.dispose()
    page = await api.get("/v1/accounts/globex.com/timeline", headers=ADMIN)
    items = page.json()["items"]
    assert sorted(item["type"] for item in items) == ["account_upserted", "contact_identified"]
    assert {(item["account_provenance"], item["account_confidence"]) for item in items} == {
        ("api", 1.0)
    }


async def test_writes_are_validated_and_scoped(api: httpx.AsyncClient) -> None:
    bad = await api.post(
        "/v1/opportunities",
        headers=WRITER,
        json={"account": "globex.com", "opportunity_id": "o", "status": "maybe"},
    )
    assert bad.status_code == 422 and bad.json()["field"] == "status"
    unknown = await api.post(
        "/v1/contacts", headers=WRITER, json={"account": "x.io", "email": "a@x.io", "age": 3}
    )
    assert unknown.status_code == 422 and unknown.json()["field"] == "age"
    before_utc = await api.put(
        "/v1/accounts/a.com", headers=WRITER, json={"occurred_at": "0001-01-01T00:00:00+01:00"}
    )
    assert before_utc.status_code == 422 and before_utc.json()["field"] == "occurred_at"
    assert before_utc.headers["content-type"] == "application/problem+json"
    assert (await api.put("/v1/accounts/a.com", headers=ADMIN, json={})).status_code == 403
    assert (await api.get("/v1/funnel", headers=WRITER)).status_code == 403


async def test_broker_down_means_503(api: httpx.AsyncClient, broker: EmbeddedBroker) -> None:
    broker.stop()
    response = await api.put("/v1/accounts/a.com", headers=WRITER, json={"target": True})
    assert response.status_code == 503 and response.headers["retry-after"] == "5"


async def test_admin_creates_lists_and_revokes_credentials(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    created = (await api.post("/v1/admin/write-keys", headers=ADMIN, json={"source": "www"})).json()
    token = (
        await api.post("/v1/admin/tokens", headers=ADMIN, json={"name": "bot", "scopes": ["read"]})
    ).json()
    engine = db.create_engine(url=pg_url)
    sessions = db.create_sessionmaker(engine)
    async with sessions() as session:
        assert await source_for_write_key(session, created["secret"]) == "www"
        assert await scopes_for_token(session, token["secret"]) == {"read"}
    listed = (await api.get("/v1/admin/write-keys", headers=ADMIN)).json()
    assert [k["label"] for k in listed] == ["www"] and "secret" not in listed[0]
    bot = {"Authorization": f"Bearer {token['secret']}"}
    assert (await api.get("/v1/funnel", headers=bot)).status_code == 200
    assert (await api.delete(f"/v1/admin/tokens/{token['id']}", headers=ADMIN)).status_code == 204
    assert (await api.delete(f"/v1/admin/tokens/{token['id']}", headers=ADMIN)).status_code == 404
    assert (await api.get("/v1/funnel", headers=bot)).status_code == 401
    assert (
        await api.delete(f"/v1/admin/write-keys/{created['id']}", headers=ADMIN)
    ).status_code == 204
    async with sessions() as session:
        assert await source_for_write_key(session, created["secret"]) is None
    await engine.dispose()
    assert (
        await api.post("/v1/admin/tokens", headers=WRITER, json={"name": "x", "scopes": ["admin"]})
    ).status_code == 403


async def test_revocations_answer_204_with_rate_limit_headers(api: httpx.AsyncClient) -> None:
    """Each returns its own bodiless Response, which FastAPI sends without the headers the
    rate limit dependency set."""
    key = (await api.post("/v1/admin/write-keys", headers=ADMIN, json={"source": "www"})).json()
    token = (
        await api.post("/v1/admin/tokens", headers=ADMIN, json={"name": "b", "scopes": ["read"]})
    ).json()
    hook = (
        await api.post(
            "/v1/webhooks",
            headers=WRITER,
            json={"url": "https://hooks.example/x", "event_types": ["stage_changed"]},
        )
    ).json()
    revocations = [
        await api.delete(f"/v1/admin/write-keys/{key['id']}", headers=ADMIN),
        await api.delete(f"/v1/admin/tokens/{token['id']}", headers=ADMIN),
        await api.delete(f"/v1/webhooks/{hook['id']}", headers=WRITER),
    ]
    for response in revocations:
        assert response.status_code == 204 and response.content == b""
        assert {"ratelimit-limit", "ratelimit-remaining", "ratelimit-reset"} <= set(
            response.headers
        )
        limit, remaining = (int(response.headers[f"ratelimit-{n}"]) for n in ("limit", "remaining"))
        assert 0 <= remaining <= limit  # (the bucket refills while a slow request runs)
