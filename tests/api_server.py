"""The API served for real on PostgreSQL, seeded with state written by the services' own code."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from contextlib import asynccontextmanager
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
from starlette.types import ASGIApp, Receive, Scope, Send

from schemas.events import AccountUpserted, PageViewed, SurgeEnded, SurgeStarted
from services.api.app import ApiState, create_app
from services.api.settings import ApiSettings
from services.funnel import repository as funnel_repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.intent import repository as intent_repository
from services.kit import db
from services.kit.broker import free_port
from services.kit.changes import record_changes
from services.kit.credentials import store_api_token
from services.kit.runner import quiet_server
from tests.harness import wait_until_ready

T0 = datetime(2026, 4, 1, tzinfo=UTC)
READ = {"Authorization": "Bearer reader"}


def upsert(i: int) -> AccountUpserted:
    return AccountUpserted(
        event_id=f"u{i}",
        occurred_at=T0 + timedelta(minutes=i),
        received_at=T0,
        account=f"acct{i:02d}.com",
        source="crm",
        target=True,
        industry="software",
        employees=100 + i,
        owner="ann" if i % 2 else "bob",
    )


async def seed(url: str) -> None:
    events: list[Any] = [upsert(i) for i in range(25)]
    events += [
        PageViewed(
            event_id=f"p{i}",
            occurred_at=T0 + timedelta(hours=1),
            received_at=T0,
            account=f"acct{i:02d}.com",
            source="web",
            url="https://v.io/",
        )
        for i in range(10)
    ]
    states, changes = apply_events({}, events, FunnelConfig())
    surge = SurgeStarted(
        event_id="s1",
        occurred_at=T0,
        received_at=T0,
        account="acct03.com",
        source="intent",
        topic="pricing",
        score=88,
        baseline=1,
        observed=12,
        detector_version="t",
    )
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await funnel_repository.save_accounts(session, states.values(), StateCache(10))
        await funnel_repository.record_transitions(session, changes)
        await record_changes(session, changes)
        await intent_repository.record_surges(session, [surge])
        await store_api_token(session, "reader", "crm-plugin", frozenset({"read"}))
        await store_api_token(session, "writer", "loader", frozenset({"write"}))
    await engine.dispose()


async def record_surges_as_intent_does(
    url: str, changes: Sequence[SurgeStarted | SurgeEnded]
) -> None:
    """What the intent service writes for its surge events, in one transaction (see
    ``IntentHandler.apply``): the surges table and the change log."""
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await intent_repository.record_surges(session, changes)
        await record_changes(session, changes)
    await engine.dispose()


@asynccontextmanager
async def serving(url: str, **overrides: Any) -> AsyncIterator[httpx.AsyncClient]:
    port = free_port()
    settings = ApiSettings(database_url=url, api_port=port, **overrides)
    server = quiet_server(create_app(settings), "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await wait_until_ready(f"http://127.0.0.1:{port}")
    try:
        async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}") as client:
            yield client
    finally:
        server.should_exit = True
        await task


@asynccontextmanager
async def in_process(settings: ApiSettings) -> AsyncIterator[tuple[httpx.AsyncClient, ApiState]]:
    """The API app called in this process (no server, no port), its lifespan run as a
    server runs it: a client, and the state every request sees."""
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:

        async def with_state(scope: Scope, receive: Receive, send: Send) -> None:
            # What a server does with the lifespan's state: a copy in every request's scope.
            await app({**scope, "state": dict(state)}, receive, send)

        asgi: ASGIApp = with_state
        transport = httpx.ASGITransport(app=asgi)
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            yield client, state["api"]
