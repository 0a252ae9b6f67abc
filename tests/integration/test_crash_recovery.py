"""SIGKILL the funnel consumer mid-stream, again and again, over more than 100,000 events
across 1,000 accounts that use every kind of fact the funnel keeps (contacts, email,
meetings, NPS, spend, anonymous and bot visits, clock ticks, surges from the surges topic,
late re-sent duplicates): every table it writes ends identical to an uninterrupted run of
the same service on another database; and its states, history and KPI facts equal one run
of the pure core over the de-duplicated events (no loss, no double count)."""

from __future__ import annotations

import asyncio
import random
from collections import Counter
from collections.abc import Sequence
from typing import Any

import pytest
from sqlalchemy import select

from schemas import topics
from schemas.events import Event, decode_event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events_with_facts
from services.funnel.repository import fact_rows, transition_rows
from services.funnel.state import AccountState
from services.kit import db, migrate
from services.kit.broker import EmbeddedBroker
from services.kit.tables import account_transitions, accounts, metadata, processed_events
from tests.harness import (
    PostgresCluster,
    Stack,
    canonical_rows,
    consume_all,
    produce,
    stored_progress,
    table_rows,
    wait_for_progress,
)
from tests.streams import generate_full

pytestmark = pytest.mark.integration

KILLS = 6

# Relayed and then deleted: what is left depends on when the process stopped.
IN_FLIGHT = {"outbox"}


async def test_sigkill_mid_stream_neither_loses_nor_double_counts(
    services: Stack, pg_url: str, postgres: PostgresCluster, broker: EmbeddedBroker
) -> None:
    stream = generate_full(accounts=1000, events_per_account=100, seed=11)
    assert len(stream.events) >= 100_000
    uninterrupted_url = postgres.url(await postgres.create_database())
    await asyncio.to_thread(migrate.upgrade, uninterrupted_url)
    # The timeline is a rolling window on wall-clock time; keep all of it to compare it.
    services.env["ABM_FUNNEL_TIMELINE_DAYS"] = "100000"
    # The two topics interleave at random when consumed together: the parts go one by one,
    # each consumed by both runs (one funnel at a time: they share the consumer group).
    parts: Sequence[tuple[str, list[Event], int]] = (
        (topics.EVENTS.name, stream.events, KILLS),
        (topics.SURGES.name, stream.surges, 1),
        (topics.EVENTS.name, stream.tail, 1),
    )
    rng = random.Random(5)
    for topic, part, kills in parts:
        await produce(broker.bootstrap, part, topic)
        await _consume_with_kills(services, pg_url, topic, len(part), kills, rng)
        await _consume(services, uninterrupted_url, topic, len(part))

    killed_tables = await table_rows(pg_url)
    uninterrupted_tables = await table_rows(uninterrupted_url)
    differences = {
        name: _difference(killed_tables[name], rows)
        for name, rows in uninterrupted_tables.items()
        if name not in IN_FLIGHT and killed_tables[name] != rows
    }
    assert not differences, f"differ after the kills: {differences}"

    applied = stream.applied_order()
    states, changes, facts = apply_events_with_facts({}, applied, FunnelConfig())
    assert (
        await _applied_count(pg_url)
        == len(applied)
        < len([*stream.events, *stream.surges, *stream.tail])
    ), "the stream must contain duplicates"
    assert await _states(pg_url) == states
    assert killed_tables[account_transitions.name] == canonical_rows(
        account_transitions, transition_rows(changes, states)
    )
    for name, expected in fact_rows(facts).items():
        table = metadata.tables[name]
        assert killed_tables[name] == canonical_rows(table, expected), f"{name}: not the core's"
    published = await consume_all(broker.bootstrap, topics.CHANGES.name, len(changes))
    assert {decode_event(r.value).event_id for r in published} == {c.event_id for c in changes}
    _assert_deep_enough(states, changes, facts)


def _assert_deep_enough(
    states: dict[str, AccountState], changes: Sequence[Any], facts: Sequence[Any]
) -> None:
    """The stream reaches what it claims to: every stage, every rule, every kind of fact."""
    assert len({s.stage for s in states.values()}) >= 5
    rules = Counter(change.rule for change in changes)
    for rule in ("engaged", "engagement_lapsed", "opportunity_lost", "churned", "untargeted",
                 "tier1_just_right", "tier2_recent_intent", "expanded"):  # fmt: skip
        assert rules[rule] > 0, f"no {rule} in {rules}"
    kinds = Counter(type(fact).__name__ for fact in facts)
    assert set(kinds) == {"ActivityFact", "SpendFact", "NpsFact", "RevenueFact"}, kinds
    assert sum(len(s.contacts) for s in states.values()) > 1000  # stakeholders


async def _consume_with_kills(
    services: Stack, url: str, topic: str, total: int, kills: int, rng: random.Random
) -> None:
    """Start the funnel, let it commit, SIGKILL it at a random moment, ``kills`` times;
    then a last process consumes the rest and stops cleanly."""
    services.env["ABM_DATABASE_URL"] = url
    services.env["ABM_FUNNEL_MAX_BATCH"] = "250"
    already = await stored_progress(url, topic)
    for _ in range(kills):
        progress = await stored_progress(url, topic)
        funnel = services.start("funnel")
        if progress < already + total:
            await wait_for_progress(url, progress, timeout_s=120, topic=topic)
        await asyncio.sleep(rng.uniform(0.0, 1.5))
        funnel.kill()
        assert funnel.process.returncode == -9
    if kills > 1:
        assert await stored_progress(url, topic) < already + total, "done before the last kill"
    await _consume(services, url, topic, total, since=already, batch=250)


async def _consume(
    services: Stack, url: str, topic: str, total: int, since: int | None = None, batch: int = 1000
) -> None:
    """Run one funnel process on ``url`` until ``total`` more records of ``topic`` (than
    ``since``, else than now) are consumed; stop it cleanly."""
    services.env["ABM_DATABASE_URL"] = url
    services.env["ABM_FUNNEL_MAX_BATCH"] = str(batch)
    start = await stored_progress(url, topic) if since is None else since
    progress = await stored_progress(url, topic)
    if progress >= start + total:
        return  # the killed process got to the end before its kill
    funnel = services.start("funnel")
    while progress < start + total:
        progress = await wait_for_progress(url, progress, timeout_s=120, topic=topic)
    assert funnel.terminate() == 0


def _difference(killed: list[dict[str, Any]], uninterrupted: list[dict[str, Any]]) -> str:
    only_killed = sorted(set(map(repr, killed)) - set(map(repr, uninterrupted)))
    only_uninterrupted = sorted(set(map(repr, uninterrupted)) - set(map(repr, killed)))
    return (
        f"{len(killed)} rows after the kills, {len(uninterrupted)} uninterrupted; "
        f"only after the kills: {only_killed[:3]}; only uninterrupted: {only_uninterrupted[:3]}"
    )


async def _states(url: str) -> dict[str, AccountState]:
    engine = db.create_engine(url=url)
    try:
        async with engine.connect() as connection:
            rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
    finally:
        await engine.dispose()
    return {domain: AccountState.model_validate(state) for domain, state in rows}


async def _applied_count(url: str) -> int:
    engine = db.create_engine(url=url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(select(processed_events.c.event_id))
            return len(rows.all())
    finally:
        await engine.dispose()
