"""Every funnel KPI's definition, in one place (see ../shared/domain.md, "The six-stage
ABM funnel"): pure functions over plain numbers, dates and frozen dataclasses, no I/O.

The funnel (which records the facts) and the API (which aggregates them for a period and
a tier) both use these, so a number means the same thing everywhere. Ratios are plain
ratios in [0, 1] (not percentages, NPS excepted), and ``None`` whenever their denominator
is 0: "no data" is never shown as 0 %. Their names, stages, units and one-line
definitions are catalogued in ``schemas.kpi_catalogue``.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from itertools import pairwise
from typing import Literal

from schemas.events import STAGE_ORDER, Stage

SECONDS_PER_DAY = 86_400
PROMOTER_MIN = 9
DETRACTOR_MAX = 6

# --- ratios and averages ---------------------------------------------------------------


def ratio(part: float, whole: float) -> float | None:
    """``part / whole``; None when ``whole`` is 0 (no data is not 0 %)."""
    return part / whole if whole else None


def engaged_share(engaged: int, targets: int) -> float | None:
    """% of target accounts engaged = engaged target accounts / all target accounts.

    ``targets``: the target accounts now; ``engaged``: those of them with an engagement
    (any digital channel or personal contact; an ad impression is reach, not engagement)
    on a day within the period. The KPI ``engaged_share`` of ``/v1/kpis`` and the
    top-level one of ``/v1/funnel`` are this. It is not the share of targets whose stage
    is engaged or beyond (``share_at_or_beyond``): an account with an opportunity that did
    not engage within the period is not engaged in it."""
    return ratio(engaged, targets)


def not_engaged_share(engaged: int, targets: int) -> float | None:
    """% of target accounts not engaged: the complement of ``engaged_share``."""
    share = engaged_share(engaged, targets)
    return None if share is None else 1 - share


def cost_per_account(spend: float, accounts: int) -> float | None:
    """Cost per engaged, opportunity or won account = spend / those accounts."""
    return ratio(spend, accounts)


def per_account(total: float, accounts: int) -> float | None:
    """An average per account (spikes, touches, stakeholders) = total / accounts."""
    return ratio(total, accounts)


def opportunity_rate(with_opportunity: int, targets: int) -> float | None:
    """Target accounts with an opportunity / all target accounts."""
    return ratio(with_opportunity, targets)


def win_rate(won: int, targets: int) -> float | None:
    """Target accounts won / all target accounts."""
    return ratio(won, targets)


def deanonymisation_rate(identified: int, anonymous: int) -> float | None:
    """Anonymous visitors (of target accounts) turned into known contacts / all of them."""
    return ratio(identified, anonymous)


@dataclass(frozen=True, slots=True)
class Deanonymisation:
    identified: int
    anonymous: int

    @property
    def rate(self) -> float | None:
        return deanonymisation_rate(self.identified, self.anonymous)


def deanonymisation(
    visitors: Iterable[tuple[datetime, datetime | None]],
    start: datetime | None,
    end: datetime | None,
) -> Deanonymisation:
    """De-anonymisation within the half-open period ``[start, end)`` (open when None) of
    the visitors of target accounts, each given as (first seen, identified at or None).

    Anonymous within the period: first seen before its end, and not identified before
    its start (still anonymous at the start, or first seen within it). Identified: those
    of them identified before its end."""
    identified = anonymous = 0
    for first_seen, identified_at in visitors:
        if end is not None and first_seen >= end:
            continue  # came after the period
        if start is not None and identified_at is not None and identified_at < start:
            continue  # known before the period
        anonymous += 1
        if identified_at is not None and (end is None or identified_at < end):
            identified += 1
    return Deanonymisation(identified=identified, anonymous=anonymous)


def renewal_rate(renewed: int, due: int) -> float | None:
    """Customers who renewed at the end of their term / customers whose term ended."""
    return ratio(renewed, due)


def average_contract_value(amounts: Iterable[float]) -> float | None:
    """ACV: the mean amount of the contracts signed (new deals and renewals); contracts
    without a known amount (0) are left out, as they would drag the mean down falsely."""
    known = [amount for amount in amounts if amount > 0]
    return statistics.fmean(known) if known else None


def pipeline(accounts: Iterable[tuple[bool, Mapping[str, float]]]) -> float:
    """Pipeline = total potential revenue of the open opportunities of the target accounts
    now, whatever their stage (a customer's upsell opportunity counts). Each account is
    given as (target now, its open opportunities' amounts by id); non-targets' are out."""
    return math.fsum(
        float(amount) for is_target, open_ in accounts if is_target for amount in open_.values()
    )


def touches_until_signature(
    signed_on: Mapping[str, date], daily_touches: Iterable[tuple[str, date, int]]
) -> dict[str, int]:
    """Each won account's sales and marketing touches (all channels, whatever its tier or
    target flag then) on the days up to and including its signature day ``signed_on``;
    ``daily_touches`` holds (account, day, touches), other accounts' are ignored."""
    totals = dict.fromkeys(signed_on, 0)
    for domain, day, touches in daily_touches:
        signed = signed_on.get(domain)
        if signed is not None and day <= signed:
            totals[domain] += touches
    return totals


def touches_per_won_account(
    touches_until_won: Mapping[str, int], won: Collection[str]
) -> float | None:
    """Average touches per account won in the period: the touches until signature
    (``touches_until_signature``) of the accounts ``won`` / their number (an account
    without recorded touches counts with 0)."""
    return per_account(sum(touches_until_won.get(domain, 0) for domain in won), len(won))


@dataclass(frozen=True, slots=True)
class Committee:
    """One account's buying committee as known: its contacts, and its engaged
    stakeholders (None when unknown: a state written before the committee score)."""

    contacts: int
    engaged: int | None


def stakeholders(committees: Collection[Committee]) -> float | None:
    """Stakeholders identified = contacts known per account (of those given: the target
    accounts with an opportunity now)."""
    return per_account(sum(c.contacts for c in committees), len(committees))


def penetration(committees: Iterable[Committee]) -> float | None:
    """Account penetration = engaged stakeholders per account, over the accounts whose
    engaged stakeholders are known (an unknown count is left out, not taken as 0)."""
    known = [c.engaged for c in committees if c.engaged is not None]
    return per_account(sum(known), len(known))


def total_revenue(new: float, renewals: float, expansion: float) -> float:
    """Total revenue from target accounts = new + renewals + expansion."""
    return new + renewals + expansion


def net_promoter_score(scores: Iterable[int]) -> float | None:
    """NPS = % promoters (9-10) - % detractors (0-6), from -100 to 100; None without answers."""
    answers = list(scores)
    if not answers:
        return None
    promoters = sum(1 for s in answers if s >= PROMOTER_MIN)
    detractors = sum(1 for s in answers if s <= DETRACTOR_MAX)
    return 100 * (promoters - detractors) / len(answers)


# --- durations --------------------------------------------------------------------------


def days_between(start: datetime, end: datetime) -> float:
    """Days (fractional) from ``start`` to ``end``."""
    return (end - start).total_seconds() / SECONDS_PER_DAY


def days_since_first_engagement(first_engaged: datetime | None, reached: datetime) -> float | None:
    """Days from the first engagement to ``reached`` (an opportunity, a signature); None
    when the account never engaged before it (sales opened it cold)."""
    if first_engaged is None or first_engaged > reached:
        return None
    return days_between(first_engaged, reached)


def median_days(days: Iterable[float | None]) -> float | None:
    """The median of the known durations; None when there is none."""
    known = [d for d in days if d is not None]
    return statistics.median(known) if known else None


# --- spend ------------------------------------------------------------------------------


def spend_in_period(
    amount: float, spent_from: date, spent_to: date, start: date | None, end: date | None
) -> float:
    """The part of a spend over the days ``spent_from..spent_to`` (inclusive) that falls in
    the period ``start..end`` (inclusive, open when None), pro rata by day."""
    first, last = min(spent_from, spent_to), max(spent_from, spent_to)
    overlap_from = max(first, start) if start is not None else first
    overlap_to = min(last, end) if end is not None else last
    if overlap_to < overlap_from:
        return 0.0
    return amount * ((overlap_to - overlap_from).days + 1) / ((last - first).days + 1)


# --- stages: counts, conversion, regressions ---------------------------------------------


@dataclass(frozen=True, slots=True)
class StageConversion:
    """Conversion from one stage to the next: ``reached_to / reached_from``."""

    from_stage: Stage
    to_stage: Stage
    reached_from: int
    reached_to: int
    rate: float | None


def stage_counts(stages: Iterable[Stage | None]) -> dict[Stage, int]:
    """Accounts in each stage now (every stage present); accounts without one not counted."""
    counts = dict.fromkeys(STAGE_ORDER, 0)
    for stage in stages:
        if stage is not None:
            counts[stage] += 1
    return counts


def share_at_or_beyond(stages: Iterable[Stage | None], stage: Stage) -> float | None:
    """Share of the accounts given whose stage now is ``stage`` or a later one, over all
    of them (accounts without a stage included). A snapshot of the funnel, not a KPI of a
    period: with ``Stage.ENGAGED`` it differs from ``engaged_share``."""
    given = list(stages)
    beyond = sum(1 for s in given if s is not None and s.rank >= stage.rank)
    return ratio(beyond, len(given))


def reached_counts(furthest_ranks: Iterable[int]) -> dict[Stage, int]:
    """Accounts that ever reached each stage: reached(N) = #{furthest stage rank >= N}.

    An account that went further counts as having reached every earlier stage, even if it
    skipped one or has since moved back down (a lost opportunity, a churn).
    """
    return reached_from_rank_counts(Counter(furthest_ranks))


def reached_from_rank_counts(accounts_by_rank: Mapping[int, int]) -> dict[Stage, int]:
    """``reached_counts`` from the number of accounts per furthest stage rank."""
    return {
        stage: sum(n for rank, n in accounts_by_rank.items() if rank >= stage.rank)
        for stage in STAGE_ORDER
    }


def stage_conversions(reached: Mapping[Stage, int]) -> list[StageConversion]:
    """Conversion between consecutive stages: reached(N+1) / reached(N), None if 0 / 0."""
    return [
        StageConversion(
            current,
            following,
            reached[current],
            reached[following],
            ratio(reached[following], reached[current]),
        )
        for current, following in pairwise(STAGE_ORDER)
    ]


# A customer moving among these stays a customer: won -> expansion -> retention is a renewal
# after an upsell, not a move back down.
CUSTOMER_STAGES = frozenset({Stage.WON, Stage.RETENTION, Stage.EXPANSION})


def is_regression(from_stage: Stage | None, to_stage: Stage | None) -> bool:
    """A move back down the funnel: an engagement lapsing, a lost opportunity, a churn back
    to target. A move between customer stages is none (see ``CUSTOMER_STAGES``)."""
    if from_stage is None or to_stage is None:
        return False
    if from_stage in CUSTOMER_STAGES and to_stage in CUSTOMER_STAGES:
        return False
    return to_stage.rank < from_stage.rank


# --- renewals ----------------------------------------------------------------------------

TermKind = Literal["new", "renewal", "expansion", "churn"]


@dataclass(frozen=True, slots=True)
class TermFact:
    """A customer lifecycle fact: a deal won, a renewal, an expansion or a churn."""

    domain: str
    kind: TermKind
    on: date
    term_end: date | None = None


@dataclass(frozen=True, slots=True)
class RenewalOutcome:
    renewed: int
    due: int

    @property
    def rate(self) -> float | None:
        return renewal_rate(self.renewed, self.due)


def renewal_outcome(
    facts: Iterable[TermFact], start: date | None, end: date | None
) -> RenewalOutcome:
    """Customers whose term ended in the period ``start..end`` (inclusive), and those who
    renewed: a renewal or a churn in the period ends a term; so does a known term end in
    the period (the latest one recorded by then) with neither (a silent lapse, not renewed).
    Without ``end``, silent lapses cannot be told from running terms and are not counted.
    """
    renewed: set[str] = set()
    decided: set[str] = set()
    latest_term_end: dict[str, tuple[date, date]] = {}  # domain -> (recorded on, term end)
    for fact in facts:
        in_period = (start is None or fact.on >= start) and (end is None or fact.on <= end)
        if in_period and fact.kind in ("renewal", "churn"):
            decided.add(fact.domain)
            if fact.kind == "renewal":
                renewed.add(fact.domain)
        if fact.term_end is not None and (end is None or fact.on <= end):
            known = latest_term_end.get(fact.domain)
            if known is None or fact.on >= known[0]:
                latest_term_end[fact.domain] = (fact.on, fact.term_end)
    lapsed = {
        domain
        for domain, (_, term_end) in latest_term_end.items()
        if end is not None and (start is None or term_end >= start) and term_end <= end
    }
    return RenewalOutcome(renewed=len(renewed), due=len(decided | lapsed))


# --- cohorts -----------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class CohortStage:
    stage: Stage
    reached: int
    median_days: float | None


@dataclass(frozen=True, slots=True)
class Cohort:
    """Accounts that entered the funnel in one month, and how far they got since."""

    month: str  # "YYYY-MM"
    size: int
    stages: tuple[CohortStage, ...]  # every stage after target, in funnel order


def cohort_entry(journey: Mapping[Stage, datetime]) -> datetime | None:
    """When an account entered the funnel: its entry to target, else its first entry."""
    if Stage.TARGET in journey:
        return journey[Stage.TARGET]
    return min(journey.values(), default=None)


def cohorts(journeys: Iterable[Mapping[Stage, datetime]]) -> list[Cohort]:
    """Cohorts by entry month, oldest first. A journey is an account's first entry time in
    each stage it reached; a stage counts as reached by the cohort when entered at or after
    the account's funnel entry, with the median days from that entry."""
    by_month: dict[str, list[tuple[datetime, Mapping[Stage, datetime]]]] = defaultdict(list)
    for journey in journeys:
        entry = cohort_entry(journey)
        if entry is not None:
            by_month[entry.strftime("%Y-%m")].append((entry, journey))
    return [_cohort(month, members) for month, members in sorted(by_month.items())]


def _cohort(month: str, members: list[tuple[datetime, Mapping[Stage, datetime]]]) -> Cohort:
    stages = []
    for stage in STAGE_ORDER[1:]:
        days = [
            days_between(entry, journey[stage])
            for entry, journey in members
            if stage in journey and journey[stage] >= entry
        ]
        stages.append(CohortStage(stage, len(days), median_days(days)))
    return Cohort(month=month, size=len(members), stages=tuple(stages))


def day_after(day: date) -> date:
    """The next day: inclusive date periods become half-open ``[start, end + 1 day)``."""
    return day + timedelta(days=1)
