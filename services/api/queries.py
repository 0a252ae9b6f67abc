"""Read-side queries over the tables the consumers write. Never writes."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Select, and_, exists, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.tables import account_transitions, accounts, surges

STAGES = ("target", "engaged", "opportunity", "won", "retention", "expansion")

_active_surge = exists().where(
    and_(surges.c.account == accounts.c.domain, surges.c.ended_at.is_(None))
)
SUMMARY_COLUMNS = (
    accounts.c.domain, accounts.c.name, accounts.c.owner, accounts.c.is_target,
    accounts.c.fit_score, accounts.c.stage, accounts.c.stage_since, accounts.c.tier,
    _active_surge.label("surging"), accounts.c.last_activity_at, accounts.c.updated_at,
)  # fmt: skip


async def account(session: AsyncSession, domain: str) -> dict[str, Any] | None:
    row = (
        await session.execute(
            select(*SUMMARY_COLUMNS, accounts.c.state).where(accounts.c.domain == domain)
        )
    ).first()
    return None if row is None else dict(row._mapping)


async def active_surges(session: AsyncSession, domain: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(surges)
        .where(surges.c.account == domain)
        .where(surges.c.ended_at.is_(None))
        .order_by(surges.c.score.desc())
    )
    return [dict(r._mapping) for r in rows]


async def transitions(session: AsyncSession, domain: str, kind: str) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(account_transitions)
        .where(account_transitions.c.domain == domain)
        .where(account_transitions.c.kind == kind)
        .order_by(account_transitions.c.occurred_at, account_transitions.c.event_id)
    )
    return [dict(r._mapping) for r in rows]


async def account_page(
    session: AsyncSession,
    *,
    stage: str | None,
    tier: int | None,
    surging: bool | None,
    after: str | None,
    limit: int,
) -> Sequence[dict[str, Any]]:
    """Keyset pagination by domain: stable and cheap however deep the page."""
    query: Select[Any] = select(*SUMMARY_COLUMNS).order_by(accounts.c.domain).limit(limit)
    if stage is not None:
        query = query.where(accounts.c.stage == stage)
    else:
        query = query.where(accounts.c.stage.is_not(None))
    if tier is not None:
        query = query.where(accounts.c.tier == tier)
    if surging is not None:
        query = query.where(_active_surge if surging else ~_active_surge)
    if after is not None:
        query = query.where(accounts.c.domain > after)
    return [dict(r._mapping) for r in await session.execute(query)]


async def stage_counts(session: AsyncSession) -> tuple[dict[str, int], dict[int, int]]:
    """(accounts per current stage, accounts per furthest stage rank reached)."""
    current = await session.execute(
        select(accounts.c.stage, func.count())
        .where(accounts.c.stage.is_not(None))
        .group_by(accounts.c.stage)
    )
    furthest = await session.execute(
        select(accounts.c.furthest_stage_rank, func.count())
        .where(accounts.c.furthest_stage_rank >= 0)
        .group_by(accounts.c.furthest_stage_rank)
    )
    return {s: n for s, n in current}, {r: n for r, n in furthest}
