"""`abm icp suggest` end to end: states written by the funnel, a loadable configuration out."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

import pytest

from services.funnel import repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig, load_funnel_config
from services.funnel.icp_cli import run_icp_suggest
from services.funnel.icp_suggest import Thresholds
from services.funnel.processing import apply_events
from services.kit import db
from services.kit.settings import CommonSettings
from tests.streams import generate

pytestmark = pytest.mark.integration


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
    retained = sum(1 for s in states.values() if s.furthest_stage_rank >= 4)
    assert retained > 0 and {e["attribute"] for e in evidence} >= {"industry", "employees"}
    assert all(e["retained"] <= retained for e in evidence)
