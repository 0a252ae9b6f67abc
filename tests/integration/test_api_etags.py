"""Every GET read of the API revalidates: a strong ETag on 200, a bodiless 304 for a matching
``If-None-Match``, and a new tag once the data the route reads has changed."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from schemas.events import AccountUpserted, PageViewed, SurgeStarted
from services.api.app import create_app
from services.api.settings import ApiSettings
from services.funnel import repository as funnel_repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.timeline import Timeline
from services.kit import db, migrate
from services.kit.changes import record_changes
from services.kit.credentials import store_api_token
from services.kit.tables import webhook_deliveries
from tests.api_server import T0, record_surges_as_intent_does, seed, serving
from tests.harness import PostgresCluster

pytestmark = pytest.mark.integration

ROOT = {"Authorization": "Bearer root"}  # every scope: read, write (webhooks) and admin
NOT_STREAMED = {"/v1/stream", "/healthz", "/readyz"}


@dataclass(frozen=True)
class Ctx:
    """What some reads need to be addressed: a subscription, a cursor at the feed's end."""

    subscription: str
    changes_cursor: str
    accounts_cursor: str


@dataclass(frozen=True)
class Read:
    route: str
    path: Callable[[Ctx], str]
    params: Callable[[Ctx], dict[str, Any]] = field(default=lambda _: {})


READS = [
    Read("/v1/accounts", lambda _: "/v1/accounts", lambda _: {"stage": "engaged"}),
    Read(
        "/v1/accounts",
        lambda _: "/v1/accounts",
        lambda c: {"limit": 4, "sort": "domain", "cursor": c.accounts_cursor},
    ),
    Read("/v1/accounts/{domain}", lambda _: "/v1/accounts/acct03.com"),
    Read("/v1/accounts/{domain}/timeline", lambda _: "/v1/accounts/acct03.com/timeline"),
    Read("/v1/changes", lambda _: "/v1/changes", lambda _: {"limit": 500}),
    Read("/v1/changes", lambda _: "/v1/changes", lambda c: {"cursor": c.changes_cursor}),
    Read(
        "/v1/funnel",
        lambda _: "/v1/funnel",
        lambda _: {"from": "2026-03-01T00:00:00Z", "to": "2026-05-01T00:00:00Z"},
    ),
    Read("/v1/kpis", lambda _: "/v1/kpis", lambda _: {"from": "2026-03-01", "to": "2026-05-01"}),
    Read("/v1/funnel/cohorts", lambda _: "/v1/funnel/cohorts"),
    Read("/v1/surges", lambda _: "/v1/surges"),
    Read("/v1/webhooks", lambda _: "/v1/webhooks"),
    Read(
        "/v1/webhooks/{subscription_id}/deliveries",
        lambda c: f"/v1/webhooks/{c.subscription}/deliveries",
    ),
    Read("/v1/admin/write-keys", lambda _: "/v1/admin/write-keys"),
    Read("/v1/admin/tokens", lambda _: "/v1/admin/tokens"),
    Read("/v1/admin/ip-ranges", lambda _: "/v1/admin/ip-ranges"),
]


def test_every_get_route_of_the_app_is_covered() -> None:
    app = create_app(ApiSettings(database_url="sqlite+aiosqlite:///:memory:"))
    gets = {path for path, ops in app.openapi()["paths"].items() if "get" in ops}
    assert gets - NOT_STREAMED == {read.route for read in READS}


@dataclass(frozen=True)
class Served:
    api: httpx.AsyncClient
    url: str
    ctx: Ctx


@pytest.fixture(scope="module")
async def served(postgres: PostgresCluster) -> AsyncIterator[Served]:
    """One seeded database and server for every read: each case makes its own changes."""
    url = postgres.url(await postgres.create_database())
    await asyncio.to_thread(migrate.upgrade, url)
    await seed(url)
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await store_api_token(session, "root", "ops", frozenset({"read", "write", "admin"}))
    await engine.dispose()
    async with serving(url, api_rate_limit_burst=10_000, api_webhooks_enabled=False) as api:
        body = {"url": "https://93.184.215.14/hook", "event_types": ["stage_changed"]}
        created = await api.post("/v1/webhooks", headers=ROOT, json=body)
        assert created.status_code == 201, created.text
        changes = (await api.get("/v1/changes", params={"limit": 500}, headers=ROOT)).json()
        page = await api.get("/v1/accounts", params={"limit": 4, "sort": "domain"}, headers=ROOT)
        ctx = Ctx(created.json()["id"], changes["next_cursor"], page.json()["next_cursor"])
        yield Served(api, url, ctx)


async def change_everything(served: Served, n: int) -> None:
    """What every read depends on, changed (``n`` keeps each case's writes new): a new engaged
    account sorting between acct05 and acct06, acct03 written again with a visit on its
    timeline and a new surge, a delivery, new credentials, a subscription and an IP range."""
    api, ctx, url = served.api, served.ctx, served.url
    domain, moment = f"acct05b{n}.com", T0 + timedelta(hours=2 + n)
    new = AccountUpserted(event_id=f"u-new-{n}", occurred_at=moment, received_at=T0,
                          account=domain, source="crm", target=True)  # fmt: skip
    visit = PageViewed(event_id=f"p-new-{n}", occurred_at=moment, received_at=T0,
                       account=domain, source="web", url="https://v.io/")  # fmt: skip
    seen = PageViewed(event_id=f"p-03-{n}", occurred_at=moment, received_at=T0,
                      account="acct03.com", source="web", url="https://v.io/x")  # fmt: skip
    states, changes = apply_events({}, [new, visit], FunnelConfig())
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        acct03 = await funnel_repository.load_accounts(session, ["acct03.com"], StateCache(1))
        await funnel_repository.save_accounts(
            session, [*states.values(), acct03["acct03.com"]], StateCache(10)
        )
        await funnel_repository.record_transitions(session, changes)
        await record_changes(session, changes)
        await Timeline(retention_days=100_000).record(session, [new, visit, seen])
        await session.execute(
            insert(webhook_deliveries).values(
                subscription_id=ctx.subscription,
                event_id=f"e{n}",
                event_type="stage_changed",
                payload={},
                status="pending",
                attempts=0,
                next_attempt_at=T0,
                created_at=T0,
            )
        )
    await engine.dispose()
    surge = SurgeStarted(event_id=f"s-{n}", occurred_at=moment, received_at=T0,
                         account="acct03.com", source="intent", topic=f"topic{n}", score=80,
                         baseline=1, observed=9, detector_version="t")  # fmt: skip
    await record_surges_as_intent_does(url, [surge])
    writes: list[Awaitable[httpx.Response]] = [
        api.post("/v1/admin/tokens", headers=ROOT, json={"name": f"bot{n}", "scopes": ["read"]}),
        api.post("/v1/admin/write-keys", headers=ROOT, json={"source": f"www{n}"}),
        api.post(
            "/v1/webhooks",
            headers=ROOT,
            json={"url": "https://93.184.215.15/hook", "event_types": ["tier_changed"]},
        ),
        api.post(
            "/v1/admin/ip-ranges",
            headers={**ROOT, "Content-Type": "text/csv"},
            content=f"cidr,domain\n203.0.{n}.0/24,{domain}\n".encode(),
        ),
    ]
    for write in writes:
        response = await write
        assert response.status_code in (200, 201), response.text


@pytest.mark.parametrize(
    "read", READS, ids=[r.route + "?" + "&".join(r.params(Ctx("s", "c", "a"))) for r in READS]
)
async def test_reads_carry_strong_etags_that_revalidate_and_change_with_the_data(
    served: Served, read: Read
) -> None:
    api, ctx = served.api, served.ctx
    path, params = read.path(ctx), read.params(ctx)

    async def get(if_none_match: str | None = None) -> httpx.Response:
        extra = {"If-None-Match": if_none_match} if if_none_match else {}
        return await api.get(path, params=params, headers={**ROOT, **extra})

    first = await get()
    assert first.status_code == 200, first.text
    etag = first.headers["etag"]
    assert etag.startswith('"') and etag.endswith('"') and len(etag) > 2, etag  # strong
    again = await get(etag)
    assert again.status_code == 304 and again.content == b"", again.text
    assert again.headers["etag"] == etag
    assert (await get(f"W/{etag}")).status_code == 304  # weak comparison, as RFC 9110 says
    other = await get('"something-else"')
    assert other.status_code == 200 and other.content == first.content
    assert other.headers["etag"] == etag

    await change_everything(served, READS.index(read))
    for _ in range(100):  # the detail hears of writes by notification, soon after the commit
        after = await get(etag)
        if after.status_code != 304:
            break
        await asyncio.sleep(0.05)
    assert after.status_code == 200, "the old ETag still matches after the data changed"
    assert after.content != first.content
    new_etag = after.headers["etag"]
    assert new_etag != etag and not new_etag.startswith("W/")
    assert (await get(new_etag)).status_code == 304
