"""Storage on both backends (PostgreSQL and SQLite): migrations, consumer bookkeeping,
funnel and intent repositories, credentials."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import insert, text
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import AccountUpserted, PageViewed, SurgeEnded, SurgeStarted
from schemas.topics import EVENTS, partition_of
from services.api.queries import surge_query
from services.funnel import repository as funnel_repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.intent import repository as intent_repository
from services.intent.config import IntentConfig
from services.intent.processing import apply_events as apply_intent
from services.kit import credentials, db, migrate, offsets
from services.kit.offsets import OffsetConflict, OutboundRecord
from services.kit.tables import surges
from tests.schema_drift import EXPRESSION_INDEXES, expression_index_names, schema_differences

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 1, 9, tzinfo=UTC)


async def test_migrations_reach_head(any_db_url: str) -> None:
    engine = db.create_engine(url=any_db_url)
    try:
        assert await migrate.is_current(engine)
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_declared_tables(any_db_url: str) -> None:
    """Columns, types, indexes and keys: what the migrations built is what tables.py says."""
    engine = db.create_engine(url=any_db_url)
    try:
        async with engine.connect() as connection:
            differences = await connection.run_sync(schema_differences)
            expression_indexes = await connection.run_sync(expression_index_names)
    finally:
        await engine.dispose()
    assert differences == []
    assert EXPRESSION_INDEXES == {"ix_surges_changed_at"} <= expression_indexes


async def test_offsets_are_compare_and_set(session: AsyncSession) -> None:
    partition = ("abm.events.v1", 3)
    async with session.begin():
        await offsets.advance_offset(session, "g", partition, None, 10)
    async with session.begin():
        assert await offsets.load_offsets(session, "g", [partition]) == {partition: 10}
        await offsets.advance_offset(session, "g", partition, 10, 25)
    with pytest.raises(OffsetConflict):
        async with session.begin():
            await offsets.advance_offset(session, "g", partition, 10, 30)  # a zombie's batch
    with pytest.raises(OffsetConflict):
        async with session.begin():
            await offsets.advance_offset(session, "g", partition, None, 5)
    async with session.begin():
        assert await offsets.load_offsets(session, "g", [partition, ("other", 0)]) == {
            partition: 25
        }


async def test_a_batch_moves_all_its_partitions_or_none(session: AsyncSession) -> None:
    first, second, third = (("abm.events.v1", n) for n in (0, 1, 2))
    async with session.begin():
        await offsets.advance_offsets(session, "g", {first: (None, 5), second: (None, 7)})
    async with session.begin():
        # Two stored rows move in one compare-and-set; a new partition is inserted.
        moves = {first: (5, 9), second: (7, 8), third: (None, 3)}
        await offsets.advance_offsets(session, "g", moves)
    async with session.begin():
        stored = await offsets.load_offsets(session, "g", [first, second, third])
        assert stored == {first: 9, second: 8, third: 3}
    with pytest.raises(OffsetConflict, match=r"abm.events.v1\[1\] moved past 7"):
        async with session.begin():  # a zombie's batch: one of its partitions moved on
            await offsets.advance_offsets(session, "g", {first: (9, 12), second: (7, 10)})
    async with session.begin():  # the whole transaction rolled back
        stored = await offsets.load_offsets(session, "g", [first, second, third])
        assert stored == {first: 9, second: 8, third: 3}


async def test_applied_ids_and_the_outbox_round_trip(session: AsyncSession) -> None:
    record = OutboundRecord("abm.changes.v1", b"acme.com", b'{"x":1}', (("h", b"\x00\xffv"),))
    async with session.begin():
        assert await offsets.claim_new(session, "g", ["a", "b", "a"]) == {"a", "b"}
        await offsets.enqueue_all(session, "g", {("abm.events.v1", 0): [record, record]})
        other = OutboundRecord("abm.changes.v1", None, b"{}")
        await offsets.enqueue_all(session, "g", {("abm.events.v1", 2): [other], ("x", 0): []})
    async with session.begin():
        pending = await offsets.pending(session, "g", [("abm.events.v1", 2)], limit=10)
        assert [p.record for p in pending] == [other]
        await offsets.delete_published(session, [p.id for p in pending])
        assert await offsets.claim_new(session, "g", ["a", "c", "b"]) == {"c"}
        assert await offsets.claim_new(session, "other-group", ["a"]) == {"a"}
        pending = await offsets.pending(session, "g", [("abm.events.v1", 0)], limit=10)
        assert [p.record for p in pending] == [record, record]
        assert await offsets.pending(session, "g", [("abm.events.v1", 1)], limit=10) == []
        await offsets.delete_published(session, [p.id for p in pending])
    async with session.begin():
        assert await offsets.pending(session, "g", [("abm.events.v1", 0)], limit=10) == []


async def test_funnel_state_and_history_round_trip(session: AsyncSession) -> None:
    upsert = AccountUpserted(
        event_id="u1", occurred_at=T0, received_at=T0, account="acme.com", source="crm", target=True
    )
    visit = PageViewed(
        event_id="p1",
        occurred_at=T0,
        received_at=T0,
        account="acme.com",
        source="web",
        url="https://v.io/pricing",
    )
    states, changes = apply_events({}, [upsert, visit], FunnelConfig())
    mine = StateCache(10)
    async with session.begin():
        await funnel_repository.save_accounts(session, states.values(), mine)
        await funnel_repository.record_transitions(session, changes)
        await funnel_repository.record_transitions(session, changes)  # replayed: no duplicates
    async with session.begin():
        decoded = await funnel_repository.load_accounts(
            session, ["acme.com", "nope.com"], StateCache(10)
        )
    assert decoded == states
    # Another member writes the account: our cached copy must not be served any more.
    later, _ = apply_events(states, [visit.model_copy(update={"event_id": "p2"})], FunnelConfig())
    async with session.begin():
        await funnel_repository.save_accounts(session, later.values(), StateCache(10))
    async with session.begin():
        assert await funnel_repository.load_accounts(session, ["acme.com"], mine) == later
    assert [c.type for c in changes].count("stage_changed") == 2


async def test_intent_series_and_surges_round_trip(session: AsyncSession) -> None:
    visit = PageViewed(
        event_id="p1",
        occurred_at=T0,
        received_at=T0,
        account="acme.com",
        source="web",
        url="https://v.io/pricing",
    )
    states, _ = apply_intent({}, [visit], IntentConfig())
    common = {
        "account": "acme.com",
        "source": "intent",
        "topic": "pricing",
        "score": 80.0,
        "baseline": 1.0,
        "observed": 9.0,
        "detector_version": "t",
    }
    started = SurgeStarted(event_id="s1", occurred_at=T0, received_at=T0, **common)
    ended = SurgeEnded(event_id="s2", occurred_at=T0, received_at=T0, **common)
    async with session.begin():
        await intent_repository.save_series(session, states)
        await intent_repository.record_surges(session, [started])
    acme = partition_of("acme.com", EVENTS.partitions)
    other = (acme + 1) % EVENTS.partitions
    async with session.begin():
        assert await intent_repository.load_series(session, states.keys()) == states
        # Series are read by account: only the requested topics of it come back.
        one = sorted(states)[0]
        assert await intent_repository.load_series(session, [one]) == {one: states[one]}
        assert await intent_repository.load_series(session, [("acme.com", "nothing")]) == {}
        # What a tick of acme's partition looks at: its open surges, not other partitions'.
        assert await intent_repository.surging_series(session, {acme}) == {("acme.com", "pricing")}
        assert await intent_repository.surging_series(session, {other}) == set()
        await intent_repository.record_surges(session, [ended])
    async with session.begin():
        assert await intent_repository.surging_series(session, {acme}) == set()


async def test_credentials_are_hashed_and_revocable(session: AsyncSession) -> None:
    async with session.begin():
        await credentials.seed_dev_credentials(session, "wk", "tok")
    async with session.begin():
        assert await credentials.source_for_write_key(session, "wk") == "dev"
        assert await credentials.source_for_write_key(session, "nope") is None
        assert await credentials.scopes_for_token(session, "tok") == {"read", "write", "admin"}
    with pytest.raises(ValueError, match="unknown scopes"):
        await credentials.store_api_token(session, "t2", "x", frozenset({"root"}))


async def test_stage_history_reads_back_as_datetimes_on_both_backends(
    session: AsyncSession,
) -> None:
    from services.api.queries import stage_moves

    upsert = AccountUpserted(
        event_id="u1", occurred_at=T0, received_at=T0, account="acme.com", source="crm", target=True
    )
    visit = PageViewed(
        event_id="p1",
        occurred_at=T0.replace(hour=12),
        received_at=T0,
        account="acme.com",
        source="web",
        url="https://v.io/",
    )
    _, changes = apply_events({}, [upsert, visit], FunnelConfig())
    async with session.begin():
        await funnel_repository.record_transitions(session, changes)
    async with session.begin():
        moves = await stage_moves(session, None, None, None)
    entered_target = next(m for m in moves if m[1] == "target")
    assert entered_target[3] - entered_target[2] == T0.replace(hour=12) - T0  # datetimes, not text


async def test_the_surge_list_reads_its_order_from_an_index(pg_url: str) -> None:
    """`GET /v1/surges` pages newest change first: PostgreSQL walks ix_surges_changed_at
    and stops at the page's end, instead of sorting every surge."""
    rows = [
        {"event_id": f"s-{n:05d}", "account": f"a{n % 300}.com", "topic": f"t{n % 7}",
         "started_at": T0 + timedelta(minutes=n), "score": 80.0, "baseline": 1.0,
         "observed": 9.0, "detector_version": "t", "trigger_event_ids": [],
         "ended_at": T0 + timedelta(minutes=n + 90) if n % 3 else None}
        for n in range(20_000)
    ]  # fmt: skip
    engine = db.create_engine(url=pg_url)
    try:
        async with engine.begin() as connection:
            await connection.execute(insert(surges), rows)
            await connection.execute(text("ANALYZE surges"))
            page = surge_query().limit(50)
            sql = page.compile(dialect=postgresql.dialect(), compile_kwargs={"literal_binds": True})
            plan = "\n".join((await connection.execute(text(f"EXPLAIN {sql}"))).scalars())
            newest = (await connection.execute(page)).all()
    finally:
        await engine.dispose()
    assert "ix_surges_changed_at" in plan and "Sort" not in plan, plan
    expected = sorted(
        rows, key=lambda r: (max(r["started_at"], r["ended_at"] or T0), r["event_id"])
    )
    assert [row.event_id for row in newest] == [r["event_id"] for r in expected[::-1][:50]]
