"""`abm icp suggest`: read every account's firmographics, propose the ICP, write a
reviewable funnel configuration and the evidence behind it."""

from __future__ import annotations

import asyncio
import json
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from services.funnel.fit import Firmographics
from services.funnel.icp_suggest import Evidence, Thresholds, suggest_icp
from services.funnel.state import AccountState
from services.kit import db
from services.kit.settings import CommonSettings
from services.kit.tables import accounts


async def read_accounts(database_url: str) -> list[tuple[Firmographics, bool]]:
    """Every account's firmographics, and whether it renewed at least once."""
    engine = db.create_engine(url=database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.stream(select(accounts.c.state))
            return [learning_pair(AccountState.model_validate(state)) async for (state,) in rows]
    finally:
        await engine.dispose()


def learning_pair(state: AccountState) -> tuple[Firmographics, bool]:
    """(firmographics, retained): retained means two or more deal cycles, i.e. renewed at
    least once. Not the furthest stage: expansion is reached without any renewal (an
    upsell, a second deal won)."""
    return state.firmographics, state.renewals >= 1


def run_icp_suggest(settings: CommonSettings, out: Path, thresholds: Thresholds) -> None:
    pairs = asyncio.run(read_accounts(settings.database_url))
    icp, evidence = suggest_icp(pairs, thresholds)
    version = f"icp-suggested-{datetime.now(UTC):%Y%m%d}"
    out.write_text(
        json.dumps({"version": version, "icp": icp.model_dump(mode="json")}, indent=2) + "\n"
    )
    evidence_file = out.with_suffix(".evidence.json")
    evidence_file.write_text(json.dumps([_row(e) for e in evidence], indent=2) + "\n")
    retained = sum(kept for _, kept in pairs)
    print(f"{len(pairs):,} accounts, {retained:,} renewed at least once; ICP written to {out}")
    print(f"{'attribute':<16}{'value':<28}{'support':>9}{'base':>8}{'lift':>7}")
    for e in evidence[:25]:
        print(f"{e.attribute:<16}{e.value[:27]:<28}{e.support:>9.0%}{e.base:>8.0%}{e.lift:>7.2f}")


def _row(evidence: Evidence) -> dict[str, object]:
    return {
        "attribute": evidence.attribute,
        "value": evidence.value,
        "retained": evidence.retained,
        "support": evidence.support,
        "base": evidence.base,
        "lift": evidence.lift,
    }
