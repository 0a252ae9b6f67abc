"""The KPI facts of one applied event, derived purely from the states before and after it.

The funnel records these beside its state, in the same transaction, so each applied event
adds its facts exactly once (the consumer shell claims event ids and commits state,
facts and offsets together). The API aggregates them for any period and tier with the
definitions of ``schemas.kpis``.

- **Activity**: the difference of ``AccountState.counters`` before and after the event,
  generically (a counter added to ``Counters`` is picked up without a change here), plus
  ``touches`` (1 when a counter of a touch moved, see ``NOT_TOUCHES``), ``engagements``
  (1 for an engagement event), ``surges`` and ``web_research_spikes`` (a surge on the
  intent service's first-party web topic), and ``competitor_surges`` of customers.
- **Revenue**: a deal won (``new``, or ``expansion`` when the account was a customer
  already), a renewal, an expansion or a churn, from the state's revenue totals.
- **NPS** answers, and **spend** (also for spend that names no account).

Days are UTC days (``day_of``), like the KPI periods, whatever the offset an event was
sent with.

Each fact carries the account's tier and target flag *before* the event: the cohort the
account was in when it happened (the event itself may re-tier it).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date, datetime

from schemas.events import (
    CampaignSpent,
    Event,
    NpsSubmitted,
    OpportunityChanged,
    SubscriptionChanged,
    SurgeStarted,
)
from schemas.kpis import TermKind
from services.funnel.signals import is_engagement
from services.funnel.state import CUSTOMER_STAGES, AccountState, Counters, day_of

# The intent service's first-party web topic (IntentConfig.web_topic's default): a surge
# on it is a surge of the account's own activity on our website, a web research spike.
WEB_TOPIC = "web"
# Counters that qualify or attribute another touch rather than count one: a high-value or
# view-through visit is a visit already; a view-through conversion (an opportunity, a form)
# is attributed to an ad, it is not itself a sales or marketing touch.
NOT_TOUCHES = frozenset({"high_value_visits", "view_through_visits", "view_through_conversions"})


@dataclass(frozen=True, slots=True)
class Cohort:
    """Who the account was when the fact happened."""

    domain: str | None
    tier: int | None
    is_target: bool
    is_customer: bool


@dataclass(frozen=True, slots=True)
class ActivityFact:
    day: date
    who: Cohort
    counts: dict[str, int] = field(default_factory=dict)  # only non-zero increments


@dataclass(frozen=True, slots=True)
class RevenueFact:
    event_id: str
    occurred_at: datetime
    who: Cohort
    kind: TermKind
    amount: float
    term_end: date | None = None


@dataclass(frozen=True, slots=True)
class NpsFact:
    event_id: str
    occurred_at: datetime
    who: Cohort
    score: int


@dataclass(frozen=True, slots=True)
class SpendFact:
    event_id: str
    occurred_at: datetime
    who: Cohort
    channel: str
    campaign_id: str | None
    amount: float
    period_start: date
    period_end: date


Fact = ActivityFact | RevenueFact | NpsFact | SpendFact


def cohort_of(state: AccountState | None, domain: str | None) -> Cohort:
    """Who ``state``'s account is (an account not seen yet: no tier, no target)."""
    if state is None:
        return Cohort(domain=domain, tier=None, is_target=False, is_customer=False)
    return Cohort(
        domain=state.domain,
        tier=state.tier,
        is_target=state.is_target,
        is_customer=state.stage in CUSTOMER_STAGES,
    )


def facts_of(event: Event, before: AccountState | None, after: AccountState | None) -> list[Fact]:
    """The facts of ``event``, applied to ``before`` giving ``after`` (the same object when
    the event was ignored: a duplicate, a bot, the funnel's own output). Spend is a fact
    even when it names no account."""
    if isinstance(event, CampaignSpent):
        return [] if event.is_bot else [_spend(event, cohort_of(before, event.account))]
    if after is None or after is before:
        return []
    who = cohort_of(before, event.account)
    facts: list[Fact] = []
    counts = activity_increments(event, before, after)
    if counts:
        facts.append(ActivityFact(day=day_of(event.occurred_at), who=who, counts=counts))
    facts.extend(_revenue(event, before, after, who))
    if isinstance(event, NpsSubmitted):
        facts.append(NpsFact(event.event_id, event.occurred_at, who, event.score))
    return facts


def counter_increments(before: Counters, after: Counters) -> dict[str, int]:
    """Every counter that moved, by how much (generic over ``Counters``' fields)."""
    if before is after:
        return {}
    moved: dict[str, int] = {}
    for name in _COUNTER_NAMES:  # read in place: dumping both models cost twice as much
        by = getattr(after, name) - getattr(before, name)
        if by:
            moved[name] = by
    return moved


_COUNTER_NAMES = Counters.field_names()


def activity_increments(
    event: Event, before: AccountState | None, after: AccountState
) -> dict[str, int]:
    counts = counter_increments(before.counters if before else Counters(), after.counters)
    if set(counts) - NOT_TOUCHES:
        counts["touches"] = 1
    if is_engagement(event):
        counts["engagements"] = 1
    if isinstance(event, SurgeStarted):
        counts["surges"] = 1
        if event.topic.strip().lower() == WEB_TOPIC:
            counts["web_research_spikes"] = 1
        if event.competitor and before is not None and before.is_customer:
            counts["competitor_surges"] = 1
    return counts


def _revenue(
    event: Event, before: AccountState | None, after: AccountState, who: Cohort
) -> list[Fact]:
    def fact(kind: TermKind, amount: float, term_end: date | None = None) -> RevenueFact:
        return RevenueFact(event.event_id, event.occurred_at, who, kind, amount, term_end)

    if isinstance(event, OpportunityChanged):
        if event.type != "opportunity_won" or not _newly_won(event.opportunity_id, before, after):
            return []  # not a win, or a repeated one
        won = after.won_revenue - _won(before)
        return [fact("expansion" if who.is_customer else "new", won)]
    if isinstance(event, SubscriptionChanged):
        term_end = event.term_end
        if event.type == "subscription_renewed":
            return [fact("renewal", event.amount or 0.0, term_end)]
        if event.type == "subscription_expanded":
            return [fact("expansion", event.amount or 0.0, term_end)]
        return [fact("churn", 0.0, term_end)]
    return []


def _won(state: AccountState | None) -> float:
    return state.won_revenue if state is not None else 0.0


def _newly_won(opportunity: str, before: AccountState | None, after: AccountState) -> bool:
    was = before.outcome_of(opportunity) if before is not None else None
    return was != "won" and after.outcome_of(opportunity) == "won"


def _spend(event: CampaignSpent, who: Cohort) -> SpendFact:
    day = day_of(event.occurred_at)  # a spend without a period: its UTC day
    start = event.period_start or event.period_end or day
    end = event.period_end or start
    return SpendFact(
        event_id=event.event_id,
        occurred_at=event.occurred_at,
        who=who,
        channel=event.channel,
        campaign_id=event.campaign_id,
        amount=event.amount,
        period_start=min(start, end),
        period_end=max(start, end),
    )
