"""Webhooks: a change reaches a subscriber, signed, retried with back-off until accepted."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from fastapi import FastAPI, Request, Response

from schemas.events import StageChanged, TierChanged
from services.api.webhooks.signing import verify
from services.kit import db
from services.kit.broker import free_port
from services.kit.changes import record_changes
from services.kit.credentials import store_api_token
from services.kit.runner import quiet_server
from tests.api_server import serving
from tests.harness import wait_until_listening

pytestmark = pytest.mark.integration

T0 = datetime(2026, 6, 1, tzinfo=UTC)
WRITER = {"Authorization": "Bearer hooks"}


class Receiver:
    """A subscriber that fails the first two attempts of every event."""

    def __init__(self) -> None:
        self.calls: list[tuple[dict[str, str], bytes, int]] = []
        self.app = FastAPI()
        self.app.post("/hook")(self.hook)

    async def hook(self, request: Request) -> Response:
        body = await request.body()
        earlier = [c for c in self.calls if c[0]["abm-event-id"] == request.headers["abm-event-id"]]
        status = 200 if len(earlier) >= 2 else 500
        self.calls.append((dict(request.headers), body, status))
        return Response(status_code=status)


@pytest.fixture
async def receiver() -> AsyncIterator[tuple[Receiver, str]]:
    hook = Receiver()
    port = free_port()
    server = quiet_server(hook.app, "127.0.0.1", port)
    task = asyncio.create_task(server.serve())
    await wait_until_listening(port)
    yield hook, f"http://127.0.0.1:{port}/hook"
    server.should_exit = True
    await task


async def test_changes_are_delivered_signed_and_retried(
    pg_url: str, receiver: tuple[Receiver, str]
) -> None:
    hook, url = receiver
    engine = db.create_engine(url=pg_url)
    sessions = db.create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await store_api_token(session, "hooks", "crm", frozenset({"write"}))
    settings = {
        "api_webhook_poll_s": 0.05,
        "api_webhook_backoff_s": 0.1,
        "api_webhook_max_attempts": 5,
    }
    async with serving(pg_url, **settings) as api:
        created = await api.post(
            "/v1/webhooks", headers=WRITER, json={"url": url, "event_types": ["stage_changed"]}
        )
        assert created.status_code == 201
        subscription = created.json()
        async with sessions() as session, session.begin():
            await record_changes(
                session,
                [
                    StageChanged(
                        event_id="s1",
                        occurred_at=T0,
                        received_at=T0,
                        account="acme.com",
                        source="funnel",
                        to_stage="target",
                        rule="fit_above_threshold",
                        config_version="v",
                    ),
                    TierChanged(
                        event_id="t1",
                        occurred_at=T0,
                        received_at=T0,
                        account="acme.com",
                        source="funnel",
                        to_tier=3,
                        rule="tier3",
                        config_version="v",
                    ),
                ],
            )
        for _ in range(100):
            if any(status == 200 for _, _, status in hook.calls):
                break
            await asyncio.sleep(0.05)
        log = (
            await api.get(f"/v1/webhooks/{subscription['id']}/deliveries", headers=WRITER)
        ).json()
    await engine.dispose()
    assert [status for _, _, status in hook.calls] == [500, 500, 200]
    headers, body, _ = hook.calls[-1]
    assert headers["abm-event-id"] == "s1" and headers["abm-event-type"] == "stage_changed"
    assert verify(
        subscription["secret"], int(headers["abm-timestamp"]), body, headers["abm-signature"]
    )
    assert not verify("other-secret", int(headers["abm-timestamp"]), body, headers["abm-signature"])
    assert [(d["event_id"], d["status"], d["attempts"], d["last_status_code"]) for d in log] == [
        ("s1", "delivered", 3, 200)
    ]
