"""Read-side queries over the tables the consumers write. Never writes."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    ColumnElement,
    Exists,
    Select,
    and_,
    bindparam,
    exists,
    func,
    select,
    tuple_,
)
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.api.listing import AccountFilter, Keyset
from services.kit.tables import (
    UtcDateTime,
    account_events,
    account_transitions,
    accounts,
    surge_changed_at,
    surges,
)

# The account detail reads through a Core connection (cheaper per query than a session).
Reader = AsyncSession | AsyncConnection

_active_surge = exists().where(
    and_(surges.c.account == accounts.c.domain, surges.c.ended_at.is_(None))
)
SUMMARY_COLUMNS = (
    accounts.c.domain, accounts.c.name, accounts.c.owner, accounts.c.is_target,
    accounts.c.fit_score, accounts.c.stage, accounts.c.stage_since, accounts.c.tier,
    _active_surge.label("surging"), accounts.c.last_activity_at, accounts.c.updated_at,
)  # fmt: skip


# The detail's statements are built once, with the domain as a bound parameter: building a
# statement per request (and its cache key, to find its compiled form) cost more CPU than
# the rest of a detail read's SQLAlchemy work.
_DOMAIN = bindparam("domain", type_=accounts.c.domain.type)


def _of_surges(aggregate: ColumnElement[Any], name: str) -> ColumnElement[Any]:
    return select(aggregate).where(surges.c.account == _DOMAIN).scalar_subquery().label(name)


# What the account's detail depends on, cheaply: the state's write revision (every funnel
# write, transitions included, draws a new one) and its surges' summary.
_VERSION_COLUMNS = (
    accounts.c.revision.label("version_revision"),
    _of_surges(func.count(), "version_surges"),
    _of_surges(func.count(surges.c.ended_at), "version_ended"),
    _of_surges(func.max(surges.c.started_at), "version_started_at"),
    _of_surges(func.max(surges.c.ended_at), "version_ended_at"),
)
_VERSION_NAMES = tuple(column.name for column in _VERSION_COLUMNS)
_ONE = accounts.c.domain == _DOMAIN
_ACCOUNT = select(*SUMMARY_COLUMNS, accounts.c.state).where(_ONE)
_VERSION = select(*_VERSION_COLUMNS).where(_ONE)
_ACCOUNT_AND_VERSION = select(*SUMMARY_COLUMNS, accounts.c.state, *_VERSION_COLUMNS).where(_ONE)
_ACTIVE_SURGES = (
    select(surges)
    .where(surges.c.account == _DOMAIN)
    .where(surges.c.ended_at.is_(None))
    .order_by(surges.c.score.desc())
)
_TRANSITIONS = (
    select(account_transitions)
    .where(account_transitions.c.domain == _DOMAIN)
    .order_by(account_transitions.c.occurred_at, account_transitions.c.event_id)
)


async def account(session: Reader, domain: str) -> dict[str, Any] | None:
    row = (await session.execute(_ACCOUNT, {"domain": domain})).first()
    return None if row is None else dict(row._mapping)


async def account_version(session: Reader, domain: str) -> tuple[Any, ...] | None:
    """The account's version (see ``_VERSION_COLUMNS``), without its state."""
    row = (await session.execute(_VERSION, {"domain": domain})).first()
    return None if row is None else tuple(row)


async def account_and_version(
    session: Reader, domain: str
) -> tuple[dict[str, Any], tuple[Any, ...]] | None:
    """``account`` and ``account_version`` in one statement: a read that will send the
    detail whatever its version (no ``If-None-Match``) needs both, one round trip apart."""
    row = (await session.execute(_ACCOUNT_AND_VERSION, {"domain": domain})).first()
    if row is None:
        return None
    values = dict(row._mapping)
    version = tuple(values.pop(name) for name in _VERSION_NAMES)
    return values, version


async def active_surges(session: Reader, domain: str) -> list[dict[str, Any]]:
    rows = await session.execute(_ACTIVE_SURGES, {"domain": domain})
    return [dict(r._mapping) for r in rows]


async def transitions(session: Reader, domain: str) -> list[dict[str, Any]]:
    """Stage and tier history together, oldest first (the caller splits by ``kind``)."""
    rows = await session.execute(_TRANSITIONS, {"domain": domain})
    return [dict(r._mapping) for r in rows]


async def account_page(
    session: AsyncSession, criteria: AccountFilter, order: Keyset, limit: int
) -> Sequence[dict[str, Any]]:
    """Keyset pagination: stable and cheap however deep the page."""
    column = accounts.c[order.column]
    ordering = (
        (column.desc(), accounts.c.domain.desc())
        if order.descending
        else (column, accounts.c.domain)
    )
    query: Select[Any] = select(*SUMMARY_COLUMNS).order_by(*ordering).limit(limit)
    for condition in _conditions(criteria):
        query = query.where(condition)
    if order.after is not None:
        position = tuple_(column, accounts.c.domain)
        after = tuple_(*order.after)
        query = query.where(position < after if order.descending else position > after)
    return [dict(r._mapping) for r in await session.execute(query)]


def _conditions(criteria: AccountFilter) -> list[ColumnElement[bool]]:
    conditions: list[ColumnElement[bool]] = [
        accounts.c.stage == criteria.stage if criteria.stage else accounts.c.stage.is_not(None)
    ]
    if criteria.tier is not None:
        conditions.append(accounts.c.tier == criteria.tier)
    if criteria.surging is not None:
        conditions.append(_active_surge if criteria.surging else ~_active_surge)
    if criteria.topic is not None:
        conditions.append(_active_surge_on(criteria.topic))
    if criteria.fit_min is not None:
        conditions.append(accounts.c.fit_score >= criteria.fit_min)
    if criteria.fit_max is not None:
        conditions.append(accounts.c.fit_score <= criteria.fit_max)
    if criteria.owner is not None:
        conditions.append(accounts.c.owner == criteria.owner)
    if criteria.changed_since is not None:
        conditions.append(accounts.c.updated_at >= criteria.changed_since)
    return conditions


def _active_surge_on(topic: str) -> Exists:
    return exists().where(
        and_(
            surges.c.account == accounts.c.domain,
            surges.c.ended_at.is_(None),
            surges.c.topic == topic,
        )
    )


async def surge_page(
    session: AsyncSession,
    *,
    topic: str | None,
    tier: int | None,
    active: bool | None,
    since: datetime | None,
    after: tuple[datetime, str] | None,
    limit: int,
) -> Sequence[dict[str, Any]]:
    """Surges, newest change (start or end) first, with the account's current tier."""
    query = surge_query(topic=topic, tier=tier, active=active, since=since, after=after)
    return [dict(r._mapping) for r in await session.execute(query.limit(limit))]


def surge_query(
    *,
    topic: str | None = None,
    tier: int | None = None,
    active: bool | None = None,
    since: datetime | None = None,
    after: tuple[datetime, str] | None = None,
) -> Select[Any]:
    """``surge_page``'s query, without its limit."""
    changed_at = surge_changed_at  # indexed: the same expression as ix_surges_changed_at
    query = (
        select(surges, accounts.c.tier, changed_at.label("changed_at"))
        .join(accounts, accounts.c.domain == surges.c.account, isouter=True)
        .order_by(changed_at.desc(), surges.c.event_id.desc())
    )
    if topic is not None:
        query = query.where(surges.c.topic == topic)
    if tier is not None:
        query = query.where(accounts.c.tier == tier)
    if active is not None:
        query = query.where(
            surges.c.ended_at.is_(None) if active else surges.c.ended_at.is_not(None)
        )
    if since is not None:
        query = query.where(changed_at >= since)
    if after is not None:
        query = query.where(tuple_(changed_at, surges.c.event_id) < tuple_(*after))
    return query


async def stage_counts(
    session: AsyncSession, tier: int | None = None
) -> tuple[dict[str, int], dict[int, int]]:
    """(target accounts per current stage, target accounts per furthest stage rank reached):
    the funnel is of target accounts, as the KPIs of /v1/kpis are."""
    in_tier: list[ColumnElement[bool]] = [accounts.c.is_target.is_(True)]
    if tier is not None:
        in_tier.append(accounts.c.tier == tier)
    current = await session.execute(
        select(accounts.c.stage, func.count())
        .where(accounts.c.stage.is_not(None), *in_tier)
        .group_by(accounts.c.stage)
    )
    furthest = await session.execute(
        select(accounts.c.furthest_stage_rank, func.count())
        .where(accounts.c.furthest_stage_rank >= 0, *in_tier)
        .group_by(accounts.c.furthest_stage_rank)
    )
    return {s: n for s, n in current}, {r: n for r, n in furthest}


async def stage_moves(
    session: AsyncSession, start: datetime | None, end: datetime | None, tier: int | None
) -> list[tuple[str | None, str | None, datetime, datetime | None]]:
    """Stage moves made in [start, end): (from, to, when, when the account moved on next)."""
    moves = account_transitions.c
    # In the order made: the moves of one moment by their number (their ids sort at
    # random); rows stored before they were numbered come first in their moment.
    ordering = (moves.occurred_at, moves.account_seq.asc().nulls_first(), moves.event_id)
    history = select(
        moves.from_value,
        moves.to_value,
        moves.occurred_at,
        # typed, or SQLite hands the window function's value back as text
        func.lead(moves.occurred_at, type_=UtcDateTime())
        .over(partition_by=moves.domain, order_by=ordering)
        .label("left_at"),
    ).where(moves.kind == "stage")
    if tier is not None:
        history = history.where(
            moves.domain.in_(select(accounts.c.domain).where(accounts.c.tier == tier))
        )
    window = history.subquery()
    query = select(window.c.from_value, window.c.to_value, window.c.occurred_at, window.c.left_at)
    if start is not None:
        query = query.where(window.c.occurred_at >= start)
    if end is not None:
        query = query.where(window.c.occurred_at < end)
    return [tuple(row) for row in await session.execute(query)]


async def timeline(
    session: AsyncSession, domain: str, after: tuple[datetime, str] | None, limit: int
) -> list[dict[str, Any]]:
    """The account's events, newest first."""
    table = account_events
    query = (
        select(table.c.occurred_at, table.c.event_id, table.c.payload)
        .where(table.c.account == domain)
        .order_by(table.c.occurred_at.desc(), table.c.event_id.desc())
        .limit(limit)
    )
    if after is not None:
        query = query.where(tuple_(table.c.occurred_at, table.c.event_id) < tuple_(*after))
    return [dict(r._mapping) for r in await session.execute(query)]
