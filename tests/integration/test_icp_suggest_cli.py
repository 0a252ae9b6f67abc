"""`abm icp suggest` end to end: states written by the funnel, a loadable configuration out."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from schemas.events import EVENT_ADAPTER, Event, Stage
from services.funnel import repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig, load_funnel_config
from services.funnel.icp_cli import read_accounts, run_icp_suggest
from services.funnel.icp_suggest import Thresholds
from services.funnel.processing import apply_events
from services.kit import db
from services.kit.settings import CommonSettings
from tests.streams import generate

pytestmark = pytest.mark.integration

T0 = datetime(2026, 1, 5, tzinfo=UTC)


async def test_suggestion_is_a_loadable_funnel_configuration(
    sqlite_url: str, tmp_path: Path
) -> None:
    states, _ = apply_events(
        {}, generate(accounts=120, events_per_account=12, seed=4), FunnelConfig()
    )
    engine = db.create_engine(url=sqlite_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await repository.save_accounts(session, states.values(), StateCache(10))
    await engine.dispose()
    out = tmp_path / "icp.json"
    settings = CommonSettings(database_url=sqlite_url)
    await asyncio.to_thread(run_icp_suggest, settings, out, Thresholds(min_retained=1))
    config = load_funnel_config(out)
    assert config.version.startswith("icp-suggested-")
    evidence = json.loads(out.with_suffix(".evidence.json").read_text())
    retained = sum(1 for s in states.values() if s.renewals >= 1)
    assert retained > 0 and {e["attribute"] for e in evidence} >= {"industry", "employees"}
    assert all(e["retained"] <= retained for e in evidence)


async def test_the_accounts_read_as_retained_are_those_that_renewed(sqlite_url: str) -> None:
    """upsold.com reached expansion with a second deal, never renewing: not retained."""

    def event(type_: str, domain: str, day: int, **fields: Any) -> Event:
        at = T0 + timedelta(days=day)
        return EVENT_ADAPTER.validate_python(
            {"type": type_, "event_id": f"{domain}-{type_}-{day}", "occurred_at": at,
             "received_at": at, "account": domain, "source": "test", **fields}
        )  # fmt: skip

    events = []
    for domain, industry in (("upsold.com", "retail"), ("renewed.com", "software")):
        events += [
            event("account_upserted", domain, 0, target=True, industry=industry),
            event("opportunity_won", domain, 10, opportunity_id="o1", amount=50_000),
        ]
    events += [
        event("opportunity_won", "upsold.com", 100, opportunity_id="o2", amount=9_000),
        event("subscription_renewed", "renewed.com", 375, amount=50_000),
    ]
    states, _ = apply_events({}, events, FunnelConfig())
    assert states["upsold.com"].stage is Stage.EXPANSION
    assert states["renewed.com"].stage is Stage.RETENTION
    engine = db.create_engine(url=sqlite_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await repository.save_accounts(session, states.values(), StateCache(10))
    await engine.dispose()
    pairs = await read_accounts(sqlite_url)
    assert sorted((f.industry, retained) for f, retained in pairs) == [
        ("retail", False),
        ("software", True),
    ]
