"""SIGTERM to the funnel consumer mid-stream: it finishes its batch, commits, leaves the
group and exits 0 within a bounded time; a restarted consumer then finishes the stream
with nothing lost and nothing counted twice."""

from __future__ import annotations

import asyncio
import time

import pytest
from sqlalchemy import func, select

from schemas.topics import FUNNEL_GROUP, INTENT_GROUP
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.state import AccountState
from services.kit import db
from services.kit.broker import EmbeddedBroker
from services.kit.tables import accounts, processed_events
from tests.harness import Stack, produce, stored_progress, wait_for_progress
from tests.streams import generate

pytestmark = pytest.mark.integration

SHUTDOWN_BUDGET_S = 15.0


async def test_sigterm_mid_stream_exits_zero_and_loses_nothing(
    services: Stack, pg_url: str, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=150, events_per_account=30, seed=23)
    await produce(broker.bootstrap, events)
    services.env["ABM_FUNNEL_MAX_BATCH"] = "40"  # small batches: the signal lands mid-stream
    funnel = services.start("funnel")
    await wait_for_progress(pg_url, 0)

    started = time.monotonic()
    code = funnel.terminate(timeout=SHUTDOWN_BUDGET_S)
    elapsed = time.monotonic() - started
    assert code == 0, funnel.log.read_text()[-2000:]
    assert elapsed < SHUTDOWN_BUDGET_S
    assert "funnel stopped" in funnel.log.read_text()
    stopped_at = await stored_progress(pg_url)
    assert 0 < stopped_at < len(events), "the signal should land mid-stream"

    services.start("funnel")
    progress = stopped_at
    while (progress := await wait_for_progress(pg_url, progress)) < len(events):
        pass

    unique = list({e.event_id: e for e in events}.values())
    expected, _ = apply_events({}, unique, FunnelConfig())
    engine = db.create_engine(url=pg_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
        applied = await connection.scalar(select(func.count()).select_from(processed_events))
    await engine.dispose()
    assert applied == len(unique)
    assert {d: AccountState.model_validate(s) for d, s in rows} == expected


@pytest.mark.parametrize("service", ["funnel", "intent"])
async def test_sigterm_with_the_broker_gone_still_exits_in_time(
    services: Stack, pg_url: str, broker: EmbeddedBroker, service: str
) -> None:
    """With no broker to answer, aiokafka's group leave retries forever; the shell stops
    waiting for it (offsets and unrelayed records are in the database: nothing is lost)."""
    await produce(broker.bootstrap, generate(accounts=20, events_per_account=5, seed=5))
    consumer = services.start(service)
    group = {"funnel": FUNNEL_GROUP, "intent": INTENT_GROUP}[service]
    await wait_for_progress(pg_url, 0, group=group)
    broker.stop()
    await asyncio.sleep(1)  # the clients notice: their connections are refused

    started = time.monotonic()
    code = consumer.terminate(timeout=SHUTDOWN_BUDGET_S)
    elapsed = time.monotonic() - started
    log = consumer.log.read_text()
    assert code == 0 and elapsed < SHUTDOWN_BUDGET_S, (code, elapsed, log[-2000:])
    assert f"{service} stopped" in log
    assert "did not answer while stopping the consumer" in log
