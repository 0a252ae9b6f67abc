"""SIGKILL the funnel consumer mid-stream, again and again: the final state equals one
uninterrupted run of the pure core over the same events (no loss, no double count)."""

from __future__ import annotations

import asyncio
import random

import pytest
from sqlalchemy import func, select

from schemas import topics
from schemas.events import decode_event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.state import AccountState
from services.kit import db
from services.kit.broker import EmbeddedBroker
from services.kit.tables import account_transitions, accounts, processed_events
from tests.harness import Stack, consume_all, produce, stored_progress, wait_for_progress
from tests.streams import generate

pytestmark = pytest.mark.integration

KILLS = 6


async def test_sigkill_mid_stream_neither_loses_nor_double_counts(
    services: Stack, pg_url: str, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=300, events_per_account=40, seed=11)
    await produce(broker.bootstrap, events)
    services.env["ABM_FUNNEL_MAX_BATCH"] = "40"  # small batches: kills land mid-stream
    rng = random.Random(5)
    progress = 0
    for _ in range(KILLS):
        funnel = services.start("funnel")
        progress = await wait_for_progress(pg_url, progress)
        await asyncio.sleep(rng.uniform(0.0, 0.4))
        funnel.kill()
        assert funnel.process.returncode == -9
    progress_before_last = await stored_progress(pg_url)
    assert progress_before_last < len(events), "stream finished before the last kill"
    services.start("funnel")
    while (progress := await wait_for_progress(pg_url, progress)) < len(events):
        pass

    unique = list({e.event_id: e for e in events}.values())
    assert len(unique) < len(events), "the stream must contain duplicates"
    expected_states, expected_changes = apply_events({}, unique, FunnelConfig())

    engine = db.create_engine(url=pg_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
        transitions = (
            (await connection.execute(select(account_transitions.c.event_id))).scalars().all()
        )
        applied = await connection.scalar(select(func.count()).select_from(processed_events))
    await engine.dispose()

    assert applied == len(unique)
    assert {d: AccountState.model_validate(s) for d, s in rows} == expected_states
    assert sorted(transitions) == sorted(c.event_id for c in expected_changes)
    stages = {s.stage for s in expected_states.values()}
    assert len(stages) >= 5, f"stream too shallow to prove much: {stages}"
    published = await consume_all(broker.bootstrap, topics.CHANGES.name, len(expected_changes))
    assert {decode_event(r.value).event_id for r in published} == {
        c.event_id for c in expected_changes
    }
