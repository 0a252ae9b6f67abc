"""`abm replay` from the real topics, compared with the live database."""

from __future__ import annotations

import asyncio

import pytest

from services.funnel import repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.replay import compare, replay
from services.funnel.replay_cli import live_state, read_topics
from services.kit import db
from services.kit.broker import EmbeddedBroker
from tests.harness import produce
from tests.streams import generate

pytestmark = pytest.mark.integration


async def test_replay_from_the_topics_rebuilds_the_live_state(
    broker: EmbeddedBroker, pg_url: str
) -> None:
    events = generate(accounts=50, events_per_account=10, seed=8)
    await produce(broker.bootstrap, events)
    unique = list({e.event_id: e for e in events}.values())
    states, _ = apply_events({}, unique, FunnelConfig())
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await repository.save_accounts(session, states.values(), StateCache(10))
    await engine.dispose()

    records = await read_topics(broker.bootstrap)
    assert len(records) == len(events)
    result = await asyncio.to_thread(replay, records, FunnelConfig())
    assert result.states == states
    comparison = compare(result.states, await live_state(pg_url))
    assert (
        comparison.accounts == 50 and not comparison.stage_changes and not comparison.tier_changes
    )
