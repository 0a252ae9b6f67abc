"""The streams' change tail on PostgreSQL: a commit wakes every stream at once, and a stream
resumed from further back than the tail holds reads the database, then the tail."""

from __future__ import annotations

import asyncio
from contextlib import AsyncExitStack

import httpx
import pytest
from prometheus_client import REGISTRY
from sqlalchemy import text

from schemas.events import StageChanged
from services.kit import db
from services.kit.changes import record_changes
from services.kit.notify import notify_accounts_changed
from tests.api_server import READ, T0, seed, serving
from tests.integration.test_api_feed import end_of_feed, next_sse

pytestmark = pytest.mark.integration

# Far longer than the waits below: only a commit's announcement can deliver in time.
PERIOD_S = 60.0


async def commit_change(url: str, event_id: str) -> None:
    """A stage change written as the funnel writes one: the change log row and the
    notification, in one transaction."""
    change = StageChanged(
        event_id=event_id, occurred_at=T0, received_at=T0, account="acct02.com",
        source="funnel", from_stage="engaged", to_stage="opportunity",
        rule="opportunity_opened", config_version="v",
    )  # fmt: skip
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await record_changes(session, [change])
        await notify_accounts_changed(session, [change.account])
    await engine.dispose()


async def test_a_commit_wakes_every_stream_without_waiting_for_the_period(pg_url: str) -> None:
    await seed(pg_url)
    async with (
        serving(pg_url, api_rate_limit_burst=1000, api_stream_poll_s=PERIOD_S) as api,
        AsyncExitStack() as streams,
    ):
        open_before = sample("abm_api_streams_open")
        lines = []
        for _ in range(3):
            opened = api.stream("GET", "/v1/stream", headers=READ, timeout=PERIOD_S)
            lines.append((await streams.enter_async_context(opened)).aiter_lines())
        await asyncio.sleep(1.0)  # the subscriptions and the listener settle
        assert sample("abm_api_streams_open") == open_before + 3
        reads = {reader: reads_by(reader) for reader in ("tail", "stream")}
        for n in range(1, 3):
            await commit_change(pg_url, f"woken-{n}")
            received = await asyncio.wait_for(
                asyncio.gather(*(next_sse(stream) for stream in lines)), 5
            )
            assert [change["event_id"] for _, _, change in received] == [f"woken-{n}"] * 3
        # The API process (this one) read the log for all three streams: they read nothing.
        assert reads_by("stream") == reads["stream"]
        assert reads_by("tail") - reads["tail"] >= 2


async def test_a_change_held_back_by_an_older_transaction_is_served_when_that_one_ends(
    pg_url: str,
) -> None:
    """Readers serve a change only once every older transaction ended (the log's
    commit-safe rule), and the older one's end announces nothing."""
    await seed(pg_url)
    engine = db.create_engine(url=pg_url)
    async with (
        serving(pg_url, api_rate_limit_burst=1000, api_stream_poll_s=PERIOD_S) as api,
        api.stream("GET", "/v1/stream", headers=READ, timeout=PERIOD_S) as response,
        engine.connect() as older,
    ):
        lines = response.aiter_lines()
        await asyncio.sleep(1.0)  # the subscription and the listener settle
        await older.begin()
        await older.execute(text("SELECT pg_current_xact_id()"))  # it has an id: older
        await commit_change(pg_url, "held-back")
        pending = asyncio.ensure_future(next_sse(lines))
        await asyncio.sleep(0.5)
        assert not pending.done()  # the change waits for the older transaction
        await older.commit()
        _, _, change = await asyncio.wait_for(pending, 5)
    await engine.dispose()
    assert change["event_id"] == "held-back"


async def test_a_stream_resumed_behind_the_tail_reads_the_database_then_the_tail(
    pg_url: str,
) -> None:
    await seed(pg_url)
    async with serving(
        pg_url, api_rate_limit_burst=1000, api_stream_poll_s=PERIOD_S, api_stream_buffer=2
    ) as api:
        start = await end_of_feed(api)
        for n in range(5):
            await commit_change(pg_url, f"held-{n}")
        page = await api.get("/v1/changes", params={"cursor": start} if start else {}, headers=READ)
        first = page.json()["items"][0]
        assert first["event_id"] == "held-0"
        after_first = await cursor_after(api, start)
        resumed = {**READ, "Last-Event-ID": after_first}
        async with api.stream("GET", "/v1/stream", headers=resumed, timeout=PERIOD_S) as response:
            lines = response.aiter_lines()
            backlog = [await asyncio.wait_for(next_sse(lines), 5) for _ in range(4)]
            assert [change["event_id"] for _, _, change in backlog] == [
                f"held-{n}" for n in range(1, 5)
            ]
            await commit_change(pg_url, "held-5")
            _, _, live = await asyncio.wait_for(next_sse(lines), 5)
            assert live["event_id"] == "held-5"


def sample(name: str, **labels: str) -> float:
    """A metric of the API served in this process."""
    return REGISTRY.get_sample_value(name, labels) or 0.0


def reads_by(reader: str) -> float:
    return sample("abm_api_change_log_reads_total", reader=reader)


async def cursor_after(api: httpx.AsyncClient, start: str | None) -> str:
    """The feed's cursor after the first change following ``start``."""
    params = {"limit": 1, **({"cursor": start} if start else {})}
    page = (await api.get("/v1/changes", params=params, headers=READ)).json()
    return str(page["next_cursor"])
