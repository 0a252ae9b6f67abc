"""The change log never lets a reader skip a change that commits late."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from schemas.events import StageChanged
from services.kit import db
from services.kit.changes import START, changes_after, newest_position, record_changes

pytestmark = pytest.mark.integration

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def change(n: int) -> StageChanged:
    return StageChanged(
        event_id=f"c{n}",
        occurred_at=T0,
        received_at=T0,
        account="acme.com",
        source="funnel",
        to_stage="target",
        rule="r",
        config_version="v",
    )


async def test_changes_are_read_once_in_order_and_replays_are_ignored(any_db_url: str) -> None:
    engine = db.create_engine(url=any_db_url)
    sessions = db.create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await record_changes(session, [change(1), change(2)])
    async with sessions() as session, session.begin():
        await record_changes(session, [change(2), change(3)])  # c2 replayed
    async with sessions() as session:
        first = await changes_after(session, START, 2)
        rest = await changes_after(session, first[-1][0], 10)
        assert await changes_after(session, rest[-1][0], 10) == []
        assert await newest_position(session) == rest[-1][0]
    await engine.dispose()
    assert [p["event_id"] for _, p in first + rest] == ["c1", "c2", "c3"]


async def test_a_late_commit_with_a_lower_sequence_is_not_skipped(pg_url: str) -> None:
    engine = db.create_engine(url=pg_url)
    sessions = db.create_sessionmaker(engine)
    async with sessions() as slow, sessions() as fast, sessions() as reader:
        await slow.begin()
        await record_changes(slow, [change(1)])  # takes seq 1, stays open
        async with fast.begin():
            await record_changes(fast, [change(2)])  # seq 2, committed first
        assert await changes_after(reader, START, 10) == []  # 2 is held back behind 1
        await reader.rollback()
        await slow.commit()
        served = await changes_after(reader, START, 10)
    await engine.dispose()
    assert [p["event_id"] for _, p in served] == ["c1", "c2"]
