"""Intent scales by partitions: two processes splitting the accounts (one joining mid-stream,
so partitions move under load) store the same series states and surges as the pure core
run once over the whole stream."""

from __future__ import annotations

import asyncio
import random
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select

from schemas import topics
from schemas.events import Event, IntentSignalReceived, PageViewed, SurgeStarted
from services.intent.config import IntentConfig
from services.intent.detector import SeriesState
from services.intent.processing import apply_events
from services.kit import db
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.tables import account_changes, consumer_offsets, intent_series, surges
from tests.harness import Stack, produce

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 2, tzinfo=UTC)


def intent_stream(accounts: int, seed: int) -> list[Event]:
    """Each account: a visit or two a day for ten days, a third-party signal now and then,
    and for about one in three a burst on pricing on a random day; in time order."""
    rng = random.Random(seed)
    events: list[Event] = []
    for a in range(accounts):
        domain = f"account-{a:04d}.com"
        for day in range(10):
            at = T0 + timedelta(days=day, hours=rng.randrange(8, 18), minutes=rng.randrange(60))
            events.append(_page(rng, domain, at, "https://v.io/blog"))
            if rng.random() < 0.3:
                events.append(_signal(rng, domain, at + timedelta(minutes=5)))
        if rng.random() < 0.35:
            start = T0 + timedelta(days=rng.randrange(4, 10), hours=rng.randrange(24))
            events += [_page(rng, domain, start + timedelta(seconds=30 * i),
                             "https://v.io/pricing") for i in range(25)]  # fmt: skip
    return sorted(events, key=lambda e: (e.occurred_at, e.event_id))


def _page(rng: random.Random, domain: str, at: datetime, url: str) -> PageViewed:
    return PageViewed(event_id=f"pv-{rng.getrandbits(64):x}", occurred_at=at, received_at=at,
                      account=domain, source="web", url=url)  # fmt: skip


def _signal(rng: random.Random, domain: str, at: datetime) -> IntentSignalReceived:
    return IntentSignalReceived(event_id=f"is-{rng.getrandbits(64):x}", occurred_at=at,
                                received_at=at, account=domain, source="api", topic="crm",
                                provider="bombora", count=rng.randrange(1, 4))  # fmt: skip


async def intent_progress(url: str) -> int:
    engine = db.create_engine(url=url)
    try:
        async with engine.connect() as connection:
            total = await connection.scalar(
                select(func.coalesce(func.sum(consumer_offsets.c.next_offset), 0))
                .where(consumer_offsets.c.group_id == topics.INTENT_GROUP)
                .where(consumer_offsets.c.topic == topics.EVENTS.name)
            )
    finally:
        await engine.dispose()
    return int(total or 0)


async def test_two_intent_processes_split_the_accounts_and_agree_with_one_run(
    services: Stack, pg_url: str, broker: EmbeddedBroker
) -> None:
    events = intent_stream(accounts=120, seed=5)
    expected_states, outputs = apply_events({}, events, IntentConfig())
    expected_surges = {o.event_id for o in outputs if isinstance(o, SurgeStarted)}
    assert len(expected_surges) >= 20, "the stream must exercise surges"

    services.env["ABM_INTENT_MAX_BATCH"] = "50"
    first = services.start("intent")
    await produce(broker.bootstrap, events[: len(events) // 2])
    services.env["ABM_INTENT_METRICS_PORT"] = str(free_port())
    second = services.start("intent")  # joins mid-stream: partitions move under load
    await produce(broker.bootstrap, events[len(events) // 2 :])
    for _ in range(600):
        if await intent_progress(pg_url) >= len(events):
            break
        await asyncio.sleep(0.1)
    assert first.process.poll() is None and second.process.poll() is None
    assert "assigned" in second.log.read_text(), "the second member never got partitions"

    engine = db.create_engine(url=pg_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(intent_series))).all()
        stored_surges = set((await connection.scalars(select(surges.c.event_id))).all())
        feed = set((await connection.scalars(select(account_changes.c.event_id))).all())
    await engine.dispose()
    stored = {(a, t): SeriesState.model_validate(doc) for a, t, doc in rows}
    assert stored == expected_states
    assert stored_surges == expected_surges
    assert feed == {o.event_id for o in outputs}, "every surge start and end is in the change feed"
