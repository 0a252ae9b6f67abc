"""Webhooks: a change reaches a subscriber, signed, retried with back-off until accepted;
and never an internal address unless allowed, at subscription or at delivery."""

from __future__ import annotations

import asyncio
import ipaddress
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import httpx
import pytest
from fastapi import FastAPI, Request, Response
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from schemas.events import StageChanged, TierChanged
from services.api.webhooks import targets
from services.api.webhooks.signing import verify
from services.kit import db
from services.kit.broker import free_port
from services.kit.changes import record_changes
from services.kit.credentials import store_api_token
from services.kit.notify import notify_accounts_changed
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


@pytest.fixture
async def sessions(pg_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    """Sessions on the test database, which holds the write-scoped API token "hooks"."""
    engine = db.create_engine(url=pg_url)
    made = db.create_sessionmaker(engine)
    async with made() as session, session.begin():
        await store_api_token(session, "hooks", "crm", frozenset({"write"}))
    yield made
    await engine.dispose()


async def test_changes_are_delivered_signed_and_retried(
    pg_url: str,
    receiver: tuple[Receiver, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hook, url = receiver
    settings = {
        "api_webhook_poll_s": 0.05,
        "api_webhook_backoff_s": 0.1,
        "api_webhook_max_attempts": 5,
        "webhook_allow_private_targets": True,  # the receiver listens on 127.0.0.1
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
                    stage_changed("s1"),
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


def stage_changed(event_id: str) -> StageChanged:
    return StageChanged(
        event_id=event_id,
        occurred_at=T0,
        received_at=T0,
        account="acme.com",
        source="funnel",
        to_stage="target",
        rule="fit_above_threshold",
        config_version="v",
    )


INTERNAL_URLS = [
    "http://127.0.0.1/hook",
    "http://10.0.0.1/hook",
    "http://[::1]/hook",
    "http://169.254.169.254/",
    "http://localhost:8080/hook",  # a name resolving to loopback
    "http://2130706433/hook",  # 127.0.0.1 spelt as a number
]


@pytest.mark.usefixtures("sessions")  # the token
async def test_internal_urls_are_refused_unless_allowed(pg_url: str) -> None:

    async def subscribe(api: httpx.AsyncClient, url: str) -> httpx.Response:
        body = {"url": url, "event_types": ["stage_changed"]}
        return await api.post("/v1/webhooks", headers=WRITER, json=body)

    async with serving(pg_url) as api:
        for url in INTERNAL_URLS:
            refused = await subscribe(api, url)
            assert refused.status_code == 400, (url, refused.text)
            assert refused.headers["content-type"] == "application/problem+json"
            assert refused.json()["field"] == "url"
        assert (await subscribe(api, "https://93.184.215.14/hook")).status_code == 201
        assert (await api.get("/v1/webhooks", headers=WRITER)).json()[0]["url"] == (
            "https://93.184.215.14/hook"
        )
    for allowing in ({"webhook_allow_private_targets": True}, {"dev_mode": True}):
        async with serving(pg_url, **allowing) as api:
            for url in INTERNAL_URLS:
                assert (await subscribe(api, url)).status_code == 201, (allowing, url)


async def test_a_name_turned_internal_after_subscribing_is_refused_at_delivery(
    pg_url: str,
    receiver: tuple[Receiver, str],
    sessions: async_sessionmaker[AsyncSession],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    hook, url = receiver
    port = url.split(":")[-1].split("/")[0]
    answers = {"hooks.test": ["93.184.215.14"]}  # public when subscribed

    async def dns(host: str, timeout_s: float) -> list[targets.Address]:
        return [ipaddress.ip_address(a) for a in answers.get(host, [host])]

    monkeypatch.setattr(targets, "resolve", dns)
    settings = {"api_webhook_poll_s": 0.05, "api_webhook_max_attempts": 1}
    async with serving(pg_url, **settings) as api:
        created = await api.post(
            "/v1/webhooks",
            headers=WRITER,
            json={"url": f"http://hooks.test:{port}/hook", "event_types": ["stage_changed"]},
        )
        assert created.status_code == 201, created.text
        answers["hooks.test"] = ["127.0.0.1"]  # then pointed at the API's own machine
        async with sessions() as session, session.begin():
            await record_changes(session, [stage_changed("s1")])
        log_url = f"/v1/webhooks/{created.json()['id']}/deliveries"
        for _ in range(100):
            log = (await api.get(log_url, headers=WRITER)).json()
            if log and log[0]["status"] != "pending":
                break
            await asyncio.sleep(0.05)
    assert hook.calls == []  # nothing reached the receiver on 127.0.0.1
    [delivery] = log
    assert (delivery["status"], delivery["attempts"], delivery["last_status_code"]) == (
        "failed",
        1,
        None,
    )
    assert delivery["last_error"].startswith("refused: hooks.test is or resolves to an internal")
    assert "127.0.0.1" not in delivery["last_error"]


async def test_a_committed_change_starts_a_round_without_waiting_for_the_period(
    pg_url: str,
    receiver: tuple[Receiver, str],
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    hook, url = receiver
    settings = {"api_webhook_poll_s": 60.0, "webhook_allow_private_targets": True}
    async with serving(pg_url, **settings) as api:
        created = await api.post(
            "/v1/webhooks", headers=WRITER, json={"url": url, "event_types": ["stage_changed"]}
        )
        assert created.status_code == 201
        await asyncio.sleep(1.0)  # the dispatcher's first round is over: it waits
        async with sessions() as session, session.begin():  # as the funnel writes a change
            await record_changes(session, [stage_changed("woken")])
            await notify_accounts_changed(session, ["acme.com"])
        for _ in range(100):
            if hook.calls:
                break
            await asyncio.sleep(0.05)
    assert [headers["abm-event-id"] for headers, _, _ in hook.calls][:1] == ["woken"]
