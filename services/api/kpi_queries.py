"""Read-side queries behind ``/v1/kpis`` and ``/v1/funnel/cohorts``. Never writes.

Periods are inclusive UTC days ``[first, last]``; ``None`` leaves that end open. A tier
filters account populations by the account's tier now, and facts (activity, spend, NPS,
revenue) by the tier the account had when they happened.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any

from sqlalchemy import ColumnElement, Select, case, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import Stage
from schemas.kpis import TermFact, TermKind, day_after
from services.kit.tables import (
    ACTIVITY_COUNTERS,
    account_transitions,
    accounts,
    activity_daily,
    campaign_spend,
    nps_answers,
    revenue_events,
    visitors,
)


@dataclass(frozen=True, slots=True)
class Period:
    first: date | None = None
    last: date | None = None

    @property
    def start(self) -> datetime | None:
        """The first instant of the period (UTC)."""
        return None if self.first is None else datetime.combine(self.first, time(), UTC)

    @property
    def end(self) -> datetime | None:
        """The first instant after the period (UTC); None when it runs to the end of time."""
        if self.last is None or self.last == date.max:
            return None
        return datetime.combine(day_after(self.last), time(), UTC)

    def holds(self, column: ColumnElement[Any], *, days: bool = False) -> list[ColumnElement[bool]]:
        """Conditions: ``column`` (a datetime, or a date when ``days``) within the period."""
        conditions = []
        if self.first is not None:
            conditions.append(column >= (self.first if days else self.start))
        if days and self.last is not None:
            conditions.append(column <= self.last)
        elif not days and self.end is not None:
            conditions.append(column < self.end)
        return conditions


@dataclass(frozen=True, slots=True)
class StageEntry:
    domain: str
    from_stage: Stage | None
    to_stage: Stage | None
    at: datetime


@dataclass(frozen=True, slots=True)
class Spend:
    amount: float
    first: date
    last: date


def _current_tier(tier: int | None) -> list[ColumnElement[bool]]:
    return [] if tier is None else [accounts.c.tier == tier]


def _fact_tier(column: ColumnElement[Any], tier: int | None) -> list[ColumnElement[bool]]:
    return [] if tier is None else [column == tier]


async def target_count(session: AsyncSession, tier: int | None) -> int:
    query = select(func.count()).where(accounts.c.is_target.is_(True), *_current_tier(tier))
    return int(await session.scalar(query) or 0)


async def stages_now(session: AsyncSession, tier: int | None) -> list[tuple[str | None, int, int]]:
    """(current stage, furthest stage rank, accounts) of the target accounts now (in the
    tier now) in the funnel's history: the funnel counts target accounts, as its stage
    entries do; an account never targeted, or no longer, is not counted."""
    query = (
        select(accounts.c.stage, accounts.c.furthest_stage_rank, func.count())
        .where(
            accounts.c.is_target.is_(True),
            accounts.c.furthest_stage_rank >= 0,
            *_current_tier(tier),
        )
        .group_by(accounts.c.stage, accounts.c.furthest_stage_rank)
    )
    return [(stage, rank, n) for stage, rank, n in await session.execute(query)]


async def stage_entries(
    session: AsyncSession, period: Period, tier: int | None
) -> list[StageEntry]:
    """Stage moves within the period, of target accounts (by their tier now), oldest first."""
    moves = account_transitions.c
    query = (
        select(moves.domain, moves.from_value, moves.to_value, moves.occurred_at)
        .join(accounts, accounts.c.domain == moves.domain)
        .where(moves.kind == "stage", accounts.c.is_target.is_(True), *_current_tier(tier))
        .where(*period.holds(moves.occurred_at))
        .order_by(moves.occurred_at, moves.event_id)
    )
    return [
        StageEntry(domain, _stage(before), _stage(after), at)
        for domain, before, after, at in await session.execute(query)
    ]


async def activity_sums(
    session: AsyncSession, period: Period, tier: int | None
) -> dict[bool, dict[str, int]]:
    """Counters summed over the period, split by whether the account was a target then."""
    table = activity_daily.c
    sums = [func.coalesce(func.sum(table[name]), 0) for name in ACTIVITY_COUNTERS]
    query = (
        select(table.is_target, *sums)
        .where(*period.holds(table.day, days=True), *_fact_tier(table.tier, tier))
        .group_by(table.is_target)
    )
    result = {flag: dict.fromkeys(ACTIVITY_COUNTERS, 0) for flag in (True, False)}
    for flag, *values in await session.execute(query):
        result[bool(flag)] = {n: int(v) for n, v in zip(ACTIVITY_COUNTERS, values, strict=True)}
    return result


async def engaged_targets(session: AsyncSession, period: Period, tier: int | None) -> int:
    """Target accounts (now, in the tier now) with an engagement within the period."""
    table = activity_daily.c
    engaged = (
        select(table.domain)
        .where(table.engagements > 0, *period.holds(table.day, days=True))
        .distinct()
        .subquery()
    )
    query = (
        select(func.count())
        .select_from(engaged.join(accounts, accounts.c.domain == engaged.c.domain))
        .where(accounts.c.is_target.is_(True), *_current_tier(tier))
    )
    return int(await session.scalar(query) or 0)


async def daily_touches(
    session: AsyncSession, domains: Iterable[str]
) -> list[tuple[str, date, int]]:
    """(account, day, touches) of these accounts' days with activity, whatever their tier
    or target flag then (``schemas.kpis.touches_until_signature`` picks the days)."""
    wanted = sorted(set(domains))
    if not wanted:
        return []
    table = activity_daily.c
    query = select(table.domain, table.day, table.touches).where(table.domain.in_(wanted))
    return [(domain, day, int(touches)) for domain, day, touches in await session.execute(query)]


async def spends(session: AsyncSession, period: Period, tier: int | None) -> list[Spend]:
    """Spend overlapping the period (the caller takes its share of each)."""
    table = campaign_spend.c
    query = select(table.amount, table.period_start, table.period_end).where(
        *_fact_tier(table.tier, tier)
    )
    if period.first is not None:
        query = query.where(table.period_end >= period.first)
    if period.last is not None:
        query = query.where(table.period_start <= period.last)
    return [Spend(amount, first, last) for amount, first, last in await session.execute(query)]


async def nps_scores(session: AsyncSession, period: Period, tier: int | None) -> list[int]:
    table = nps_answers.c
    query = select(table.score).where(
        *period.holds(table.occurred_at), *_fact_tier(table.tier, tier)
    )
    return list(await session.scalars(query))


async def revenue(
    session: AsyncSession, period: Period, tier: int | None
) -> list[tuple[TermKind, float]]:
    """(kind, amount) of the revenue facts of target accounts within the period."""
    table = revenue_events.c
    query = select(table.kind, table.amount).where(
        table.is_target.is_(True), *period.holds(table.occurred_at), *_fact_tier(table.tier, tier)
    )
    return [(kind, amount) for kind, amount in await session.execute(query)]


async def term_facts(session: AsyncSession, period: Period, tier: int | None) -> list[TermFact]:
    """Every lifecycle fact up to the period's end (renewal rate needs the terms before)."""
    table = revenue_events.c
    query: Select[Any] = select(table.domain, table.kind, table.occurred_at, table.term_end).where(
        *_fact_tier(table.tier, tier)
    )
    if period.end is not None:
        query = query.where(table.occurred_at < period.end)
    rows = await session.execute(query.order_by(table.occurred_at, table.event_id))
    return [TermFact(domain, kind, at.date(), term_end) for domain, kind, at, term_end in rows]


async def visitor_sightings(
    session: AsyncSession, period: Period, tier: int | None
) -> list[tuple[datetime, datetime | None]]:
    """(first seen, identified at) of the visitors of target accounts (in the tier now),
    the inputs of ``schemas.kpis.deanonymisation``. Only narrowed, for its size, to
    visitors first seen before the period's end and not identified before its start: the
    rows that rule would leave out anyway."""
    table = visitors.c
    narrowed: list[ColumnElement[bool]] = []
    if period.end is not None:
        narrowed.append(table.first_seen_at < period.end)
    if period.start is not None:
        narrowed.append(table.identified_at.is_(None) | (table.identified_at >= period.start))
    query = (
        select(table.first_seen_at, table.identified_at)
        .select_from(visitors.join(accounts, accounts.c.domain == table.account))
        .where(accounts.c.is_target.is_(True), *_current_tier(tier), *narrowed)
    )
    return [
        (_aware(seen), None if known is None else _aware(known))
        for seen, known in await session.execute(query)
    ]


async def open_opportunities(
    session: AsyncSession, tier: int | None
) -> list[tuple[bool, dict[str, float]]]:
    """(target now, open opportunities' amounts) of the target accounts (in the tier now),
    whatever their stage: the inputs of ``schemas.kpis.pipeline``."""
    query = select(accounts.c.is_target, accounts.c.state["open_opportunities"]).where(
        accounts.c.is_target.is_(True), *_current_tier(tier)
    )
    return [
        (bool(is_target), {str(k): float(v) for k, v in opened.items()})
        for is_target, opened in await session.execute(query)
        if isinstance(opened, dict) and opened
    ]


async def states_of(session: AsyncSession, domains: Iterable[str]) -> dict[str, dict[str, Any]]:
    """The stored state documents of these accounts."""
    wanted = sorted(set(domains))
    if not wanted:
        return {}
    query = select(accounts.c.domain, accounts.c.state).where(accounts.c.domain.in_(wanted))
    return {domain: document for domain, document in await session.execute(query)}


@dataclass(frozen=True, slots=True)
class Relationships:
    """Relationship scores of a group of accounts now (their state's ``scores``)."""

    scored: int
    mean_score: float | None
    declining: int


async def relationships(
    session: AsyncSession, tier: int | None, stages: Iterable[Stage]
) -> Relationships:
    """Mean relationship score and declining trends of the target accounts now in
    ``stages``, aggregated in the database."""
    relationship = accounts.c.state["scores"]["relationship"]
    score = relationship["score"].as_float()
    declining = case((relationship["trend"].as_string() == "declining", 1), else_=0)
    query = select(func.count(score), func.avg(score), func.coalesce(func.sum(declining), 0)).where(
        accounts.c.is_target.is_(True),
        accounts.c.stage.in_([stage.value for stage in stages]),
        *_current_tier(tier),
    )
    scored, mean, falling = (await session.execute(query)).one()
    return Relationships(int(scored or 0), None if mean is None else float(mean), int(falling))


async def states_where(
    session: AsyncSession, tier: int | None, *conditions: ColumnElement[bool]
) -> list[dict[str, Any]]:
    """State documents of the target accounts (in the tier now) matching ``conditions``."""
    query = select(accounts.c.state).where(
        accounts.c.is_target.is_(True), *_current_tier(tier), *conditions
    )
    return list(await session.scalars(query))


async def journeys(session: AsyncSession, tier: int | None) -> list[dict[Stage, datetime]]:
    """Each account's first entry time in each stage it entered (tier: its tier now)."""
    moves = account_transitions.c
    query = (
        select(moves.domain, moves.to_value, func.min(moves.occurred_at))
        .where(moves.kind == "stage", moves.to_value.is_not(None))
        .group_by(moves.domain, moves.to_value)
    )
    if tier is not None:
        query = query.where(
            moves.domain.in_(select(accounts.c.domain).where(accounts.c.tier == tier))
        )
    by_domain: dict[str, dict[Stage, datetime]] = {}
    for domain, to_value, first in await session.execute(query):
        stage = _stage(to_value)
        if stage is not None:
            by_domain.setdefault(domain, {})[stage] = _aware(first)
    return list(by_domain.values())


def _stage(value: str | None) -> Stage | None:
    try:
        return Stage(value) if value is not None else None
    except ValueError:  # a stage a newer funnel writes: not counted by this API
        return None


def _aware(moment: datetime | str) -> datetime:
    """SQLite returns an aggregate of a UTC column as naive text; PostgreSQL as aware."""
    value = datetime.fromisoformat(moment) if isinstance(moment, str) else moment
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
