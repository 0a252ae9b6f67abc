"""Visitor stitching on PostgreSQL and the real broker: a visit and its visitor's
identification handled concurrently (both orders, the second transaction blocked on the
visitor's row) attribute the visit exactly once; the service publishes the copies onto
the events topic, where the funnel picks them up."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from schemas import topics
from schemas.events import ContactIdentified, Event, PageViewed, decode_event
from services.kit import db
from services.kit.consumer import InboundRecord
from services.kit.offsets import OutboundRecord
from services.kit.tables import account_events, visitor_pending_events, visitors
from services.stitch.processing import stitched_event_id
from services.stitch.service import StitchHandler
from tests.harness import Stack, consume_all, produce, wait_until_ready

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)


def visit(n: int, at: datetime, visitor: str = "v-1") -> PageViewed:
    return PageViewed(event_id=f"pv-{visitor}-{n}", occurred_at=at, received_at=at,
                      anonymous_id=visitor, source="web", url=f"https://vendor.io/{n}")  # fmt: skip


def identification(at: datetime, visitor: str = "v-1") -> ContactIdentified:
    return ContactIdentified(event_id=f"id-{visitor}", occurred_at=at, received_at=at,
                             anonymous_id=visitor, account="acme.com", source="web",
                             account_provenance="email_domain", account_confidence=0.9,
                             contact_email="jo@acme.com")  # fmt: skip


def inbound(events: Sequence[Event], partition: int) -> list[InboundRecord]:
    return [InboundRecord(topics.EVENTS.name, partition, i, e) for i, e in enumerate(events)]


async def wait_for_a_blocked_transaction(engine: AsyncEngine) -> None:
    """Until another backend of this database waits on a lock (the visitor's row)."""
    query = text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(500):
        async with engine.connect() as connection:
            if await connection.scalar(query):
                return
        await asyncio.sleep(0.02)
    raise AssertionError("the second transaction never waited for the first")


async def interleave(
    engine: AsyncEngine, first: list[InboundRecord], second: list[InboundRecord]
) -> tuple[list[OutboundRecord], list[OutboundRecord]]:
    """``first`` applied and left uncommitted while ``second`` is applied by another
    member; ``second`` must wait for the visitor's row, then commit after ``first``."""
    sessions = db.create_sessionmaker(engine)
    handler_one, handler_two = StitchHandler(), StitchHandler()  # two group members

    async def apply_in_own_transaction(records: list[InboundRecord]) -> list[OutboundRecord]:
        session: AsyncSession
        async with sessions() as session, session.begin():
            return await handler_two.apply(session, records)

    async with sessions() as session_one:
        async with session_one.begin():
            out_first = await handler_one.apply(session_one, first)
            blocked = asyncio.create_task(apply_in_own_transaction(second))
            await wait_for_a_blocked_transaction(engine)
            assert not blocked.done()
        out_second = await blocked
    return out_first, out_second


async def apply_committed(engine: AsyncEngine, records: list[InboundRecord]) -> None:
    async with db.create_sessionmaker(engine)() as session, session.begin():
        assert await StitchHandler().apply(session, records) == []


async def stored(engine: AsyncEngine) -> tuple[int, tuple[object, ...]]:
    async with engine.connect() as connection:
        pending = await connection.scalar(select(func.count()).select_from(visitor_pending_events))
        row = (await connection.execute(
            select(visitors.c.account, visitors.c.identified_at, visitors.c.provenance,
                   visitors.c.first_seen_at, visitors.c.last_seen_at)
        )).one()  # fmt: skip
    return int(pending or 0), tuple(row)


def copies(records: list[OutboundRecord]) -> list[Event]:
    return [decode_event(r.value) for r in records]


@pytest.mark.parametrize("seen_before", [False, True], ids=["new-visitor", "known-visitor"])
async def test_visit_then_concurrent_identification_attributes_the_visit_once(
    pg_url: str, seen_before: bool
) -> None:
    engine = db.create_engine(url=pg_url)
    try:
        if seen_before:  # the row exists: the waiter blocks on the row, not the key slot
            await apply_committed(engine, inbound([visit(0, T0 - timedelta(hours=1))], 3))
        the_visit = visit(1, T0)
        out_visit, out_identify = await interleave(
            engine,
            inbound([the_visit], partition=3),
            inbound([identification(T0 + timedelta(minutes=5))], partition=7),
        )
        assert out_visit == []  # stored pending: not identified when it committed
        attributed = copies(out_identify)
        expected_ids = [stitched_event_id(the_visit.event_id)]
        if seen_before:
            expected_ids = [stitched_event_id("pv-v-1-0"), *expected_ids]
        assert [c.event_id for c in attributed] == expected_ids
        assert {(c.account, c.account_provenance, c.account_confidence) for c in attributed} == {
            ("acme.com", "stitched", 0.9)
        }
        assert [r.key for r in out_identify] == [b"acme.com"] * len(expected_ids)
        first_seen = T0 - timedelta(hours=1) if seen_before else T0
        assert await stored(engine) == (
            0,
            ("acme.com", T0 + timedelta(minutes=5), "email_domain", first_seen,
             T0 + timedelta(minutes=5)),
        )  # fmt: skip
    finally:
        await engine.dispose()


@pytest.mark.parametrize("seen_before", [False, True], ids=["new-visitor", "known-visitor"])
async def test_identification_then_concurrent_visit_attributes_the_visit_directly(
    pg_url: str, seen_before: bool
) -> None:
    engine = db.create_engine(url=pg_url)
    try:
        if seen_before:
            await apply_committed(engine, inbound([visit(0, T0 - timedelta(hours=1))], 3))
        the_visit = visit(1, T0 + timedelta(minutes=10))
        out_identify, out_visit = await interleave(
            engine,
            inbound([identification(T0 + timedelta(minutes=5))], partition=7),
            inbound([the_visit], partition=3),
        )
        assert [c.event_id for c in copies(out_visit)] == [stitched_event_id(the_visit.event_id)]
        assert [c.event_id for c in copies(out_identify)] == (
            [stitched_event_id("pv-v-1-0")] if seen_before else []
        )
        pending, row = await stored(engine)
        assert pending == 0
        assert row[:3] == ("acme.com", T0 + timedelta(minutes=5), "email_domain")
        assert row[4] == T0 + timedelta(minutes=10)
    finally:
        await engine.dispose()


async def test_the_service_publishes_stitched_copies_the_funnel_records(
    services: Stack, pg_url: str
) -> None:
    now = datetime.now(UTC).replace(microsecond=0)
    visits = [visit(n, now - timedelta(minutes=30 - n), visitor="v-9") for n in range(3)]
    other = visit(7, now - timedelta(minutes=20), visitor="v-other")  # never identifies
    identify = identification(now - timedelta(minutes=10), visitor="v-9")
    stitch = services.start("stitch")
    services.start("funnel")
    await wait_until_ready(f"http://127.0.0.1:{services.env['ABM_STITCH_METRICS_PORT']}")
    await produce(services.env["ABM_KAFKA_BOOTSTRAP"], [*visits, other])
    await produce(services.env["ABM_KAFKA_BOOTSTRAP"], [identify])

    records = await consume_all(services.env["ABM_KAFKA_BOOTSTRAP"], topics.EVENTS.name, 8)
    stitched = [decode_event(r.value) for r in records if r.value and b'"stitched"' in r.value]
    assert sorted(e.event_id for e in stitched) == sorted(
        stitched_event_id(v.event_id) for v in visits
    )
    assert {(e.account, e.account_provenance, e.anonymous_id) for e in stitched} == {
        ("acme.com", "stitched", "v-9")
    }
    keys = {r.key for r in records if r.value and b'"stitched"' in r.value}
    assert keys == {b"acme.com"}

    engine = db.create_engine(url=pg_url)
    try:
        wanted = {stitched_event_id(v.event_id) for v in visits}
        for _ in range(300):  # the funnel applies the copies like any event of the account
            async with engine.connect() as connection:
                recorded = set(
                    (await connection.scalars(
                        select(account_events.c.event_id).where(account_events.c.account
                                                                == "acme.com")
                    )).all()
                )  # fmt: skip
            if wanted <= recorded:
                break
            await asyncio.sleep(0.1)
        assert wanted | {identify.event_id} == recorded
        async with engine.connect() as connection:
            rows = (await connection.execute(
                select(visitors.c.anonymous_id, visitors.c.account, visitors.c.identified_at)
                .order_by(visitors.c.anonymous_id)
            )).all()  # fmt: skip
            left = await connection.scalar(select(func.count()).select_from(visitor_pending_events))
    finally:
        await engine.dispose()
    assert [tuple(r) for r in rows] == [
        ("v-9", "acme.com", identify.occurred_at),
        ("v-other", None, None),
    ]
    assert left == 1  # the visitor that never identified keeps its visit pending
    assert stitch.terminate() == 0


async def test_state_and_pending_events_round_trip_on_both_backends(any_db_url: str) -> None:
    engine = db.create_engine(url=any_db_url)
    sessions = db.create_sessionmaker(engine)

    async def apply(events: Sequence[Event]) -> list[Event]:
        async with sessions() as session, session.begin():
            return copies(await StitchHandler().apply(session, inbound(events, 0)))

    try:
        early = [visit(1, T0), visit(2, T0 + timedelta(minutes=1)), visit(3, T0, visitor="v-2")]
        assert await apply(early) == []
        attributed = await apply([identification(T0 + timedelta(hours=1))])
        later = await apply([visit(4, T0 + timedelta(hours=2))])
        async with engine.connect() as connection:
            left = (await connection.execute(
                select(visitor_pending_events.c.anonymous_id, visitor_pending_events.c.event_id,
                       visitor_pending_events.c.occurred_at)
            )).all()  # fmt: skip
            row = (await connection.execute(
                select(visitors).where(visitors.c.anonymous_id == "v-1")
            )).mappings().one()  # fmt: skip
    finally:
        await engine.dispose()
    assert [(c.event_id, c.occurred_at) for c in attributed] == [
        (stitched_event_id("pv-v-1-1"), T0),
        (stitched_event_id("pv-v-1-2"), T0 + timedelta(minutes=1)),
    ]
    assert [c.event_id for c in later] == [stitched_event_id("pv-v-1-4")]
    assert [tuple(r) for r in left] == [("v-2", "pv-v-2-3", T0)]
    assert dict(row) == {
        "anonymous_id": "v-1",
        "account": "acme.com",
        "first_seen_at": T0,
        "identified_at": T0 + timedelta(hours=1),
        "provenance": "email_domain",
        "last_seen_at": T0 + timedelta(hours=2),
        "confidence": 0.9,
        "last_identified_account": "acme.com",
    }
