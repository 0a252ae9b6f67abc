"""SIGKILL the funnel consumer mid-stream, again and again, over 100,000 events across
1,000 accounts: every table it writes ends identical to an uninterrupted run of the same
service on another database, and its states and history equal one run of the pure core
over the de-duplicated events (no loss, no double count)."""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass
from typing import Any

import pytest
from sqlalchemy import func, select

from schemas import topics
from schemas.events import decode_event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.state import AccountState
from services.kit import db, migrate
from services.kit.broker import EmbeddedBroker
from services.kit.tables import account_transitions, accounts, metadata, processed_events
from tests.harness import (
    PostgresCluster,
    Stack,
    consume_all,
    produce,
    stored_progress,
    wait_for_progress,
)
from tests.streams import generate

pytestmark = pytest.mark.integration

KILLS = 6

# Columns whose values depend on wall-clock time or on commit interleaving, not on the
# events: a random token per state write, the change log's commit order, and when a row
# was written. Everything else must be identical between the two runs.
VOLATILE = {
    "accounts": {"revision"},
    "account_changes": {"seq", "txid"},
    "processed_events": {"processed_at"},
    "consumer_offsets": {"updated_at"},
}
# Relayed and then deleted: what is left depends on when the process stopped.
IN_FLIGHT = {"outbox"}


async def test_sigkill_mid_stream_neither_loses_nor_double_counts(
    services: Stack, pg_url: str, postgres: PostgresCluster, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=1000, events_per_account=100, seed=11)
    assert len(events) >= 100_000
    await produce(broker.bootstrap, events)

    services.env["ABM_FUNNEL_MAX_BATCH"] = "250"
    # The timeline is a rolling window on wall-clock time; keep all of it to compare it.
    services.env["ABM_FUNNEL_TIMELINE_DAYS"] = "100000"
    rng = random.Random(5)
    for _ in range(KILLS):
        progress = await stored_progress(pg_url)
        funnel = services.start("funnel")
        await wait_for_progress(pg_url, progress, timeout_s=120)  # this process committed
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        funnel.kill()
        assert funnel.process.returncode == -9
    assert await stored_progress(pg_url) < len(events), "stream finished before the last kill"
    last = services.start("funnel")
    await _wait_until_consumed(pg_url, len(events))
    assert last.terminate() == 0

    # The same stream, uninterrupted, into a database of its own.
    uninterrupted_url = postgres.url(await postgres.create_database())
    await asyncio.to_thread(migrate.upgrade, uninterrupted_url)
    services.env["ABM_DATABASE_URL"] = uninterrupted_url
    services.env["ABM_FUNNEL_MAX_BATCH"] = "1000"
    services.start("funnel")
    await _wait_until_consumed(uninterrupted_url, len(events))

    killed_tables = await _tables(pg_url)
    uninterrupted_tables = await _tables(uninterrupted_url)
    for name, rows in uninterrupted_tables.items():
        assert killed_tables[name] == rows, f"{name} differs after the kills"

    unique = list({e.event_id: e for e in events}.values())
    assert len(unique) < len(events), "the stream must contain duplicates"
    expected_states, expected_changes = apply_events({}, unique, FunnelConfig())
    stored = await _states_and_transitions(pg_url)
    assert stored.applied == len(unique)
    assert stored.states == expected_states
    assert sorted(stored.transitions) == sorted(c.event_id for c in expected_changes)
    stages = {s.stage for s in expected_states.values()}
    assert len(stages) >= 5, f"stream too shallow to prove much: {stages}"
    published = await consume_all(broker.bootstrap, topics.CHANGES.name, len(expected_changes))
    assert {decode_event(r.value).event_id for r in published} == {
        c.event_id for c in expected_changes
    }


async def _wait_until_consumed(url: str, total: int) -> None:
    progress = 0
    while (progress := await wait_for_progress(url, progress, timeout_s=120)) < total:
        pass


async def _tables(url: str) -> dict[str, list[tuple[Any, ...]]]:
    """Every table's rows, volatile columns left out, in a canonical order."""
    engine = db.create_engine(url=url)
    contents: dict[str, list[tuple[Any, ...]]] = {}
    try:
        async with engine.connect() as connection:
            for table in metadata.sorted_tables:
                if table.name in IN_FLIGHT:
                    continue
                skip = VOLATILE.get(table.name, set())
                columns = [c for c in table.columns if c.name not in skip]
                rows = (await connection.execute(select(*columns))).all()
                contents[table.name] = sorted((tuple(row) for row in rows), key=repr)
    finally:
        await engine.dispose()
    return contents


@dataclass(frozen=True)
class _Stored:
    states: dict[str, AccountState]
    transitions: list[str]
    applied: int


async def _states_and_transitions(url: str) -> _Stored:
    engine = db.create_engine(url=url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
            transitions = (
                (await connection.execute(select(account_transitions.c.event_id))).scalars().all()
            )
            applied = await connection.scalar(select(func.count()).select_from(processed_events))
    finally:
        await engine.dispose()
    states = {domain: AccountState.model_validate(state) for domain, state in rows}
    return _Stored(states, list(transitions), int(applied or 0))
