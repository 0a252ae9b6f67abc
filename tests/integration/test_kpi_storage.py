"""The funnel's KPI facts in storage, on PostgreSQL and SQLite: the additive upsert, the
once-only fact rows, and migration 0007 matching the table declarations."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import EVENT_ADAPTER, Event, Stage
from services.api import kpi_queries
from services.api.kpis import read_figures, stage_kpis
from services.funnel import repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.facts import ActivityFact, Cohort, NpsFact, RevenueFact, SpendFact
from services.funnel.processing import apply_events
from services.funnel.service import FunnelHandler
from services.kit import db
from services.kit.dialect import add_to_rows
from services.kit.inbound import InboundRecord
from services.kit.tables import (
    activity_daily,
    campaign_spend,
    nps_answers,
    revenue_events,
)
from tests.integration.test_api_kpis import by_name, scenario
from tests.schema_drift import schema_differences

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 1, 9, tzinfo=UTC)
DAY = date(2026, 2, 1)
ACME = Cohort(domain="acme.com", tier=2, is_target=True, is_customer=False)
MINE = {"activity_daily", "campaign_spend", "nps_answers", "revenue_events"}


async def test_add_to_rows_adds_to_the_existing_counts(session: AsyncSession) -> None:
    key = {"day": DAY, "domain": "acme.com", "tier": 1, "is_target": True}
    async with session.begin():
        await add_to_rows(session, activity_daily, [key | {"visits": 2, "chats": 1}], list(key))
    async with session.begin():
        other = key | {"domain": "beta.com"}
        rows = [key | {"visits": 3, "chats": 0}, other | {"visits": 5, "chats": 4}]
        await add_to_rows(session, activity_daily, rows, list(key))
    async with session.begin():
        stored = await session.execute(
            select(
                activity_daily.c.domain,
                activity_daily.c.visits,
                activity_daily.c.chats,
                activity_daily.c.touches,
            ).order_by(activity_daily.c.domain)
        )
        assert [tuple(r) for r in stored] == [("acme.com", 5, 1, 0), ("beta.com", 5, 4, 0)]


async def test_record_facts_sums_activity_and_stores_each_fact_once(
    session: AsyncSession,
) -> None:
    facts: list[Any] = [
        ActivityFact(DAY, ACME, {"visits": 1, "touches": 1, "engagements": 1}),
        ActivityFact(DAY, ACME, {"ad_impressions": 1, "touches": 1}),
        ActivityFact(DAY, ACME, {"not_a_counter_yet": 7}),  # unknown names are left out
        SpendFact("s1", T0, ACME, "display", "c1", 300.0, DAY, date(2026, 2, 28)),
        NpsFact("n1", T0, ACME, 9),
        RevenueFact("w1", T0, ACME, "new", 1200.0),
    ]
    async with session.begin():
        await repository.record_facts(session, facts)
    async with session.begin():
        await repository.record_facts(session, facts[:1] + facts[3:])  # facts again: ids known
    async with session.begin():
        row = (await session.execute(select(activity_daily))).one()._mapping
        assert (row["visits"], row["ad_impressions"], row["touches"], row["engagements"]) == (
            2,
            1,
            3,
            2,
        )
        assert (row["tier"], row["is_target"]) == (2, True)
        for table in (campaign_spend, nps_answers, revenue_events):
            assert await session.scalar(select(func.count()).select_from(table)) == 1


async def test_migration_0007_matches_the_table_declarations(any_db_url: str) -> None:
    def differences(connection: Connection) -> list[Any]:
        return [d for d in schema_differences(connection) if _table_of(d) in MINE]

    engine = db.create_engine(url=any_db_url)
    try:
        async with engine.connect() as connection:
            assert await connection.run_sync(differences) == []
    finally:
        await engine.dispose()


def _table_of(difference: Any) -> str | None:
    item = difference[0] if isinstance(difference, list) else difference
    for part in item[1:]:
        name = getattr(part, "name", None)
        table = getattr(part, "table", None)
        if table is not None:
            return str(table.name)
        if isinstance(part, str) and part in MINE:
            return part
        if name in MINE:
            return str(name)
    return None


async def test_the_kpi_queries_run_on_both_backends(session: AsyncSession) -> None:
    handler = FunnelHandler(FunnelConfig(), timeline_days=0)
    for batch in scenario():
        records = [InboundRecord("t", 0, i, event) for i, event in enumerate(batch)]
        async with session.begin():
            await handler.apply(session, records)
    async with session.begin():
        period = kpi_queries.Period(date(2026, 2, 1), date(2026, 2, 28))
        figures = await read_figures(session, period, None)
        journeys = await kpi_queries.journeys(session, None)
    values = by_name({"stages": [s.model_dump() for s in stage_kpis(figures)]})
    # the same numbers as on PostgreSQL through HTTP (see test_api_kpis)
    assert (values["engaged_accounts"], values["won_accounts"]) == (2, 1)
    assert values["days_first_engagement_to_opportunity"] == 3.5
    assert values["renewal_rate"] == 0.5
    assert values["deanonymisation_rate"] is None  # no visitors here
    assert len(journeys) == 6
    assert all(moment.tzinfo is not None for j in journeys for moment in j.values())


async def test_relationship_scores_are_aggregated_from_the_state_documents(
    session: AsyncSession,
) -> None:
    states, _ = apply_events({}, relationship_stream(), FunnelConfig())
    async with session.begin():
        await repository.save_accounts(session, states.values(), StateCache(10))
    expected = [s.scores["relationship"] for s in states.values()]
    assert {s.stage for s in states.values()} == {Stage.TARGET, Stage.ENGAGED}
    async with session.begin():
        found = await kpi_queries.relationships(session, None, [Stage.TARGET, Stage.ENGAGED])
    assert found.scored == 2
    assert found.mean_score == pytest.approx(sum(r["score"] for r in expected) / 2)
    assert found.mean_score > 0
    assert found.declining == sum(1 for r in expected if r["trend"] == "declining")


def relationship_stream() -> list[Event]:
    """Two target accounts: one exchanges emails and meets, the other only receives."""

    def event(n: int, type_: str, domain: str, **fields: Any) -> Event:
        at = T0 + timedelta(days=n)
        return EVENT_ADAPTER.validate_python(
            {"type": type_, "event_id": f"{domain}-{n}", "occurred_at": at, "received_at": at,
             "account": domain, "source": "test", **fields}
        )  # fmt: skip

    upserts = [event(0, "account_upserted", d, target=True) for d in ("warm.io", "cold.io")]
    warm = [
        event(1, "email_sent", "warm.io", contact_email="ann@warm.io"),
        event(2, "email_replied", "warm.io", direction="inbound", contact_email="ann@warm.io"),
        event(3, "meeting_held", "warm.io", attendees=["ann@warm.io", "bob@warm.io"]),
    ]
    cold = [event(1, "email_sent", "cold.io", contact_email="cy@cold.io")]
    return [*upserts, *warm, *cold]
