"""The funnel's clock on the real broker and PostgreSQL: ticks expire the windows of
accounts that send nothing more, and a replay of the topic (ticks included) reaches
exactly the stored states and history."""

from __future__ import annotations

import asyncio
import gc
import warnings
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from schemas.events import ClockTicked, Stage, StageChanged, decode_event
from services.funnel.clock import clock_ticker
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.replay_cli import read_topics
from services.funnel.state import AccountState
from services.kit import db
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.settings import CommonSettings
from services.kit.tables import account_transitions, accounts
from tests.harness import Stack, produce, stored_progress
from tests.streams import generate

pytestmark = pytest.mark.integration

WINDOW = timedelta(days=FunnelConfig().engagement_window_days)


async def test_ticks_expire_windows_and_a_replay_of_the_topic_agrees(
    services: Stack, pg_url: str, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=120, events_per_account=12, seed=4)  # dated months ago
    await produce(broker.bootstrap, events)
    services.env["ABM_FUNNEL_TICK_INTERVAL_S"] = "0.5"
    services.env["ABM_FUNNEL_TICK_LATENESS_S"] = "0"
    services.start("funnel")

    engine = db.create_engine(url=pg_url)
    try:
        for _ in range(600):  # every event consumed, then ticks until nothing is due
            if await stored_progress(pg_url) > len(events) and await _due(engine) == 0:
                break
            await asyncio.sleep(0.1)
        assert await _due(engine) == 0, "ticks never expired the due windows"
        async with engine.connect() as connection:
            rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
            transitions = (
                await connection.execute(
                    select(account_transitions.c.event_id, account_transitions.c.rule)
                )
            ).all()
    finally:
        await engine.dispose()
    services.stop_all()  # no more ticks: the topic is now final

    on_topic = [decode_event(value) for value in await read_topics(broker.bootstrap)]
    assert any(isinstance(e, ClockTicked) for e in on_topic)
    unique = list({e.event_id: e for e in on_topic}.values())
    expected_states, expected_changes = apply_events({}, unique, FunnelConfig())

    assert {d: AccountState.model_validate(s) for d, s in rows} == expected_states
    assert sorted(event_id for event_id, _ in transitions) == sorted(
        c.event_id for c in expected_changes
    )
    lapses = [
        c for c in expected_changes if isinstance(c, StageChanged) and c.rule == "engagement_lapsed"
    ]
    assert lapses, "the stream should leave engaged accounts to lapse"
    assert all(c.cause_event_ids[0].startswith("expiry-") for c in lapses)
    now = datetime.now(UTC)
    stale = [
        d
        for d, s in expected_states.items()
        if s.stage is Stage.ENGAGED and s.last_engaged_at and now - s.last_engaged_at > WINDOW
    ]
    assert stale == [], "engaged accounts left behind their window"


async def _due(engine: AsyncEngine) -> int:
    async with engine.connect() as connection:
        count = await connection.scalar(
            select(func.count())
            .select_from(accounts)
            .where(accounts.c.due_at <= datetime.now(UTC) - timedelta(seconds=5))
        )
    return int(count or 0)


async def _run_ticker(bootstrap: str, interval_s: float, for_s: float) -> list[str]:
    """Run the clock sidecar for ``for_s``, stop it, and return the warnings of producers
    left unclosed (aiokafka warns when one is collected without ``stop``)."""
    settings = CommonSettings(kafka_bootstrap=bootstrap)
    stop = asyncio.Event()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always", ResourceWarning)
        task = asyncio.create_task(clock_ticker(settings, interval_s, 0)(None, stop))
        await asyncio.sleep(for_s)
        stop.set()
        await asyncio.wait_for(task, 10)
        gc.collect()
    return [str(w.message) for w in caught if "Unclosed AIOKafkaProducer" in str(w.message)]


async def test_the_clock_produces_ticks_and_closes_its_producer(broker: EmbeddedBroker) -> None:
    assert await _run_ticker(broker.bootstrap, interval_s=0.2, for_s=0.7) == []
    on_topic = [decode_event(value) for value in await read_topics(broker.bootstrap)]
    ticks = [e for e in on_topic if isinstance(e, ClockTicked)]
    assert {t.partition for t in ticks} == set(range(topics.EVENTS.partitions))


async def test_a_clock_stopped_early_or_cut_off_from_the_broker_leaves_no_producer_open() -> None:
    unreachable = f"127.0.0.1:{free_port()}"
    assert await _run_ticker(unreachable, interval_s=30, for_s=0.1) == []  # before a round
    assert await _run_ticker(unreachable, interval_s=0.1, for_s=0.5) == []  # failed starts
