"""Funnel state in the database: one row per account (the pure state as JSON plus the
columns the API filters on), one row per stage or tier transition, and the KPI facts
(activity per account and day, added to; spend, NPS answers and revenue, one row each)."""

from __future__ import annotations

import secrets
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import date, datetime

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import StageChanged, TierChanged
from schemas.topics import EVENTS, partition_of
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.expiry import due_at
from services.funnel.facts import ActivityFact, Fact, NpsFact, RevenueFact, SpendFact
from services.funnel.processing import transition_numbers
from services.funnel.state import AccountState
from services.kit.db import RawJson
from services.kit.dialect import add_to_rows, insert_new_rows, is_one_of, upsert_rows
from services.kit.notify import notify_accounts_changed
from services.kit.tables import (
    ACTIVITY_COUNTERS,
    account_transitions,
    accounts,
    activity_daily,
    campaign_spend,
    nps_answers,
    revenue_events,
)

DEFAULT_CONFIG = FunnelConfig()

ActivityKey = tuple[date, str, int, bool]  # (day, domain, tier or 0, is_target)


async def load_accounts(
    session: AsyncSession,
    domains: Iterable[str],
    cache: StateCache,
    writing: Mapping[str, AccountState] | None = None,
) -> dict[str, AccountState]:
    """Current states: those a batch still in flight is ``writing``, as it writes them;
    the others from the cache where its revision is the stored one, else decoded."""
    writing = writing or {}
    states = {domain: writing[domain] for domain in domains if domain in writing}
    wanted = sorted(set(domains) - states.keys())
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
    session: AsyncSession,
    states: Iterable[AccountState],
    cache: StateCache,
    config: FunnelConfig = DEFAULT_CONFIG,
) -> None:
    """Write the states, with when each next falls due under ``config`` (see ``expiry``)."""
    rows = []
    for state in states:
        revision = secrets.randbits(62)
        rows.append(account_row(state, revision, due_at(state, config)))
        cache.put(state.domain, revision, state)  # trusted only once this revision is stored
    await upsert_rows(session, accounts, rows, ["domain"])
    # The API's cached account details are evicted when this transaction commits.
    await notify_accounts_changed(session, [str(row["domain"]) for row in rows])


async def record_transitions(
    session: AsyncSession,
    changes: Sequence[StageChanged | TierChanged],
    states: Mapping[str, AccountState] | None = None,
) -> None:
    """Store ``changes``, numbered from ``states``, their accounts' states after them (see
    ``transition_numbers``); without those, unnumbered (ordered by id within a moment)."""
    await insert_new_rows(session, account_transitions, transition_rows(changes, states or {}))


def transition_rows(
    changes: Sequence[StageChanged | TierChanged], states: Mapping[str, AccountState]
) -> list[dict[str, object]]:
    """The ``account_transitions`` rows of ``changes`` (see ``record_transitions``)."""
    numbers = transition_numbers(changes, states)
    return [_transition(c, n) for c, n in zip(changes, numbers, strict=True)]


async def record_facts(session: AsyncSession, facts: Sequence[Fact]) -> None:
    """Add the activity to the daily counters; store spend, NPS and revenue (by event id,
    so a replayed one is stored once)."""
    rows = fact_rows(facts)
    await add_to_rows(session, activity_daily, rows[activity_daily.name], list(_ACTIVITY_KEYS))
    for table in (campaign_spend, nps_answers, revenue_events):
        await insert_new_rows(session, table, rows[table.name])


def fact_rows(facts: Sequence[Fact]) -> dict[str, list[dict[str, object]]]:
    """The rows ``facts`` add, per table: the activity summed per (day, account, tier,
    target flag); one row per spend, NPS answer and revenue event."""
    return {
        activity_daily.name: _activity_rows(facts),
        campaign_spend.name: [_spend_row(f) for f in facts if isinstance(f, SpendFact)],
        nps_answers.name: [_nps_row(f) for f in facts if isinstance(f, NpsFact)],
        revenue_events.name: [_revenue_row(f) for f in facts if isinstance(f, RevenueFact)],
    }


_ACTIVITY_KEYS = ("day", "domain", "tier", "is_target")


def _activity_rows(facts: Sequence[Fact]) -> list[dict[str, object]]:
    """One row per (day, account, tier, target flag): the batch's increments summed."""
    sums: dict[ActivityKey, dict[str, int]] = defaultdict(
        lambda: dict.fromkeys(ACTIVITY_COUNTERS, 0)
    )
    for fact in facts:
        if not isinstance(fact, ActivityFact) or fact.who.domain is None:
            continue
        key = (fact.day, fact.who.domain, fact.who.tier or 0, fact.who.is_target)
        row = sums[key]
        for name, by in fact.counts.items():
            if name in row:  # every Counters field has a column (a unit test checks it)
                row[name] += by
    return [dict(zip(_ACTIVITY_KEYS, key, strict=True)) | row for key, row in sorted(sums.items())]


def _who(fact: SpendFact | NpsFact | RevenueFact) -> dict[str, object]:
    return {"domain": fact.who.domain, "tier": fact.who.tier, "is_target": fact.who.is_target}


def _spend_row(fact: SpendFact) -> dict[str, object]:
    return _who(fact) | {
        "event_id": fact.event_id,
        "channel": fact.channel,
        "campaign_id": fact.campaign_id,
        "period_start": fact.period_start,
        "period_end": fact.period_end,
        "occurred_at": fact.occurred_at,
        "amount": fact.amount,
    }


def _nps_row(fact: NpsFact) -> dict[str, object]:
    return _who(fact) | {
        "event_id": fact.event_id,
        "occurred_at": fact.occurred_at,
        "score": fact.score,
    }


def _revenue_row(fact: RevenueFact) -> dict[str, object]:
    return _who(fact) | {
        "event_id": fact.event_id,
        "kind": fact.kind,
        "occurred_at": fact.occurred_at,
        "amount": fact.amount,
        "term_end": fact.term_end,
    }


def _chunks(items: list[str], size: int = 500) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


async def due_accounts(
    session: AsyncSession, partition: int, until: datetime, limit: int, besides: set[str]
) -> list[str]:
    """The ``limit`` accounts of ``partition`` due earliest, at or before ``until``, other
    than ``besides`` (loaded anyway). Ordered as ``processing.sweep`` orders them: by due
    time, then domain in code-point order (hence the "C" collation on PostgreSQL)."""
    postgres = session.get_bind().dialect.name == "postgresql"
    in_order = accounts.c.domain.collate("C") if postgres else accounts.c.domain
    query = (
        select(accounts.c.domain)
        .where(accounts.c.partition == partition, accounts.c.due_at <= until)
        .order_by(accounts.c.due_at, in_order)
        .limit(limit + len(besides))
    )
    found = (await session.execute(query)).scalars().all()
    return [d for d in found if d not in besides][:limit]


def account_row(state: AccountState, revision: int, due: datetime | None) -> dict[str, object]:
    """The ``accounts`` row of ``state``: the state document and the columns read by SQL."""
    return {
        "due_at": due,
        "partition": partition_of(state.domain, EVENTS.partitions),
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


def _transition(change: StageChanged | TierChanged, number: int | None) -> dict[str, object]:
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
        "account_seq": number,
        "rule": change.rule,
        "config_version": change.config_version,
        "cause_event_ids": list(change.cause_event_ids),
    }
