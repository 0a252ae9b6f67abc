"""Funnel state in the database: one row per account (the pure state as JSON plus the
columns the API filters on) and one row per stage or tier transition."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import StageChanged, TierChanged
from services.funnel.state import AccountState
from services.kit.dialect import insert_new_rows, upsert_rows
from services.kit.tables import account_transitions, accounts


async def load_accounts(session: AsyncSession, domains: Iterable[str]) -> dict[str, AccountState]:
    wanted = sorted(set(domains))
    states: dict[str, AccountState] = {}
    for start in range(0, len(wanted), 500):
        rows = await session.execute(
            select(accounts.c.domain, accounts.c.state).where(
                accounts.c.domain.in_(wanted[start : start + 500])
            )
        )
        states.update({domain: AccountState.model_validate(doc) for domain, doc in rows})
    return states


async def save_accounts(session: AsyncSession, states: Iterable[AccountState]) -> None:
    await upsert_rows(session, accounts, [_row(state) for state in states], ["domain"])


async def record_transitions(
    session: AsyncSession, changes: Sequence[StageChanged | TierChanged]
) -> None:
    await insert_new_rows(session, account_transitions, [_transition(c) for c in changes])


def _row(state: AccountState) -> dict[str, object]:
    return {
        "domain": state.domain,
        "name": state.firmographics.name,
        "owner": state.firmographics.owner,
        "is_target": state.is_target,
        "fit_score": state.fit.score,
        "stage": state.stage.value if state.stage else None,
        "stage_since": state.stage_since,
        "furthest_stage_rank": state.furthest_stage_rank,
        "tier": state.tier,
        "last_activity_at": state.last_activity_at,
        "updated_at": state.clock,
        "state": state.model_dump(mode="json"),
    }


def _transition(change: StageChanged | TierChanged) -> dict[str, object]:
    before: object
    after: object
    if isinstance(change, StageChanged):
        kind, before, after = "stage", change.from_stage, change.to_stage
    else:
        kind, before, after = "tier", change.from_tier, change.to_tier
    return {
        "event_id": change.event_id,
        "domain": change.account,
        "kind": kind,
        "from_value": None if before is None else str(before),
        "to_value": None if after is None else str(after),
        "occurred_at": change.occurred_at,
        "rule": change.rule,
        "config_version": change.config_version,
        "cause_event_ids": list(change.cause_event_ids),
    }
