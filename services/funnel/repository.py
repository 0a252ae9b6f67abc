"""Funnel state in the database: one row per account (the pure state as JSON plus the
columns the API filters on) and one row per stage or tier transition."""

from __future__ import annotations

import secrets
from collections.abc import Iterable, Sequence

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import StageChanged, TierChanged
from services.funnel.cache import StateCache
from services.funnel.state import AccountState
from services.kit.db import RawJson
from services.kit.dialect import insert_new_rows, is_one_of, upsert_rows
from services.kit.tables import account_transitions, accounts


async def load_accounts(
    session: AsyncSession, domains: Iterable[str], cache: StateCache
) -> dict[str, AccountState]:
    """Current states: from the cache where its revision is the stored one, else decoded."""
    wanted = sorted(set(domains))
    states: dict[str, AccountState] = {}
    stale: list[str] = []
    for chunk in _chunks(wanted):
        rows = await session.execute(
            select(accounts.c.domain, accounts.c.revision).where(
                is_one_of(session, accounts.c.domain, chunk)
            )
        )
        for domain, revision in rows:
            cached = cache.get(domain, revision)
            if cached is None:
                stale.append(domain)
            else:
                states[domain] = cached
    for chunk in _chunks(stale):
        documents = await session.execute(
            select(accounts.c.domain, accounts.c.revision, accounts.c.state).where(
                is_one_of(session, accounts.c.domain, chunk)
            )
        )
        for domain, revision, document in documents:
            states[domain] = AccountState.model_validate(document)
            cache.put(domain, revision, states[domain])
    return states


async def save_accounts(
    session: AsyncSession, states: Iterable[AccountState], cache: StateCache
) -> None:
    rows = []
    for state in states:
        revision = secrets.randbits(62)
        rows.append(_row(state, revision))
        cache.put(state.domain, revision, state)  # trusted only once this revision is stored
    await upsert_rows(session, accounts, rows, ["domain"])


async def record_transitions(
    session: AsyncSession, changes: Sequence[StageChanged | TierChanged]
) -> None:
    await insert_new_rows(session, account_transitions, [_transition(c) for c in changes])


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _row(state: AccountState, revision: int) -> dict[str, object]:
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
        "state": RawJson(state.model_dump_json()),
        "revision": revision,
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
