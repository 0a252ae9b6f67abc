"""``/v1/kpis``: every KPI of the funnel for a period and a tier, grouped by stage; and
``/v1/funnel/cohorts``: accounts by the month they entered the funnel, and how far they got.

The numbers come from the facts the funnel records (``services/kit/tables.py``, "funnel
KPI facts") and its stage history, through the definitions of ``schemas.kpis``.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import date, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import kpis as k
from schemas.events import STAGE_ORDER, Stage
from schemas.kpi_catalogue import KPIS
from services.api import kpi_queries as q
from services.api.errors import BadRequest
from services.api.kpi_models import (
    Cohort,
    CohortReport,
    CohortStage,
    Conversion,
    Kpi,
    KpiReport,
    StageKpis,
)
from services.kit.tables import accounts

router = APIRouter()

PROSPECT_STAGES = (Stage.TARGET, Stage.ENGAGED, Stage.OPPORTUNITY)
CUSTOMER_STAGES = (Stage.WON, Stage.RETENTION, Stage.EXPANSION)

FromDay = Annotated[date | None, Query(alias="from", description="First day (UTC), YYYY-MM-DD")]
ToDay = Annotated[date | None, Query(alias="to", description="Last day (UTC), inclusive")]
TierQuery = Annotated[int | None, Query(ge=1, le=3)]


@router.get("/kpis", response_model=KpiReport, summary="Every funnel KPI, per period and tier")
async def get_kpis(
    request: Request, period_from: FromDay = None, period_to: ToDay = None, tier: TierQuery = None
) -> KpiReport:
    period = _period(period_from, period_to)
    async with request.state.api.readers() as session:
        figures = await read_figures(session, period, tier)
    return KpiReport(
        period_from=period_from,
        period_to=period_to,
        tier=tier,
        stages=stage_kpis(figures),
        conversions=[
            Conversion(
                from_stage=c.from_stage.value,
                to_stage=c.to_stage.value,
                reached_from=c.reached_from,
                reached_to=c.reached_to,
                rate=c.rate,
            )
            for c in k.stage_conversions(_reached(figures))
        ],
    )


@router.get(
    "/funnel/cohorts", response_model=CohortReport, summary="Cohorts by month of funnel entry"
)
async def get_cohorts(
    request: Request, period_from: FromDay = None, period_to: ToDay = None, tier: TierQuery = None
) -> CohortReport:
    period = _period(period_from, period_to)
    async with request.state.api.readers() as session:
        journeys = await q.journeys(session, tier)
    first = period_from.strftime("%Y-%m") if period_from else None
    last = period_to.strftime("%Y-%m") if period_to else None
    return CohortReport(
        period_from=period.first,
        period_to=period.last,
        tier=tier,
        cohorts=[
            _cohort(c)
            for c in k.cohorts(journeys)
            if (first is None or c.month >= first) and (last is None or c.month <= last)
        ],
    )


def _reached(figures: Figures) -> dict[Stage, int]:
    by_rank: Counter[int] = Counter()
    for _, rank, n in figures.stages_now:
        by_rank[rank] += n
    return k.reached_from_rank_counts(by_rank)


def _period(first: date | None, last: date | None) -> q.Period:
    if first is not None and last is not None and first > last:
        raise BadRequest("`from` must not be after `to`", field="from")
    return q.Period(first, last)


def _cohort(cohort: k.Cohort) -> Cohort:
    return Cohort(
        month=cohort.month,
        size=cohort.size,
        stages=[
            CohortStage(
                stage=s.stage.value,
                reached=s.reached,
                share=k.ratio(s.reached, cohort.size),
                median_days=s.median_days,
            )
            for s in cohort.stages
        ],
    )


# --- reading -------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Figures:
    """Everything one report is computed from."""

    targets: int
    stages_now: list[tuple[str | None, int, int]]  # (stage now, furthest rank, accounts)
    entries: list[q.StageEntry]
    activity: dict[bool, dict[str, int]]  # by "was a target then"
    engaged: int
    spend: float
    opportunity_states: list[dict[str, Any]]  # accounts in stage opportunity now
    pipeline: float
    first_engaged: dict[str, datetime | None]  # accounts that entered opportunity or won
    touches_until_won: dict[str, int]
    revenue: list[tuple[k.TermKind, float]]
    renewal: k.RenewalOutcome
    nps_scores: list[int]
    deanonymisation_rate: float | None
    relationships: dict[Stage, q.Relationships]  # targets not yet customers, and customers


async def read_figures(session: AsyncSession, period: q.Period, tier: int | None) -> Figures:
    entries = await q.stage_entries(session, period, tier)
    reached = _first_entries(entries, (Stage.OPPORTUNITY, Stage.WON))
    documents = await q.states_of(session, {d for d, _ in reached})
    won_days = {d: at.date() for (d, stage), at in reached.items() if stage is Stage.WON}
    spends = await q.spends(session, period, tier)
    return Figures(
        targets=await q.target_count(session, tier),
        stages_now=await q.stages_now(session, tier),
        entries=entries,
        activity=await q.activity_sums(session, period, tier),
        engaged=await q.engaged_targets(session, period, tier),
        spend=math.fsum(
            k.spend_in_period(s.amount, s.first, s.last, period.first, period.last) for s in spends
        ),
        opportunity_states=await q.states_where(session, tier, accounts.c.stage == "opportunity"),
        pipeline=k.pipeline(await q.open_opportunities(session, tier)),
        first_engaged={d: _moment(doc.get("first_engaged_at")) for d, doc in documents.items()},
        touches_until_won=k.touches_until_signature(
            won_days, await q.daily_touches(session, won_days)
        ),
        revenue=await q.revenue(session, period, tier),
        renewal=k.renewal_outcome(
            await q.term_facts(session, period, tier), period.first, period.last
        ),
        nps_scores=await q.nps_scores(session, period, tier),
        deanonymisation_rate=k.deanonymisation(
            await q.visitor_sightings(session, period, tier), period.start, period.end
        ).rate,
        relationships={
            Stage.TARGET: await q.relationships(session, tier, PROSPECT_STAGES),
            Stage.RETENTION: await q.relationships(session, tier, CUSTOMER_STAGES),
        },
    )


def _first_entries(
    entries: Iterable[q.StageEntry], stages: tuple[Stage, ...]
) -> dict[tuple[str, Stage], datetime]:
    """The first entry within the period of each account into each of ``stages``."""
    first: dict[tuple[str, Stage], datetime] = {}
    for entry in entries:  # oldest first
        if entry.to_stage in stages:
            first.setdefault((entry.domain, entry.to_stage), entry.at)
    return first


def _moment(value: object) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        return datetime.fromisoformat(value)
    except ValueError:
        return None


# --- the report (pure) ---------------------------------------------------------------------


def stage_kpis(f: Figures) -> list[StageKpis]:
    """The report's stages, each with its KPIs, from the figures read."""
    now = dict.fromkeys(STAGE_ORDER, 0)
    for name, _, n in f.stages_now:
        stage = _stage(name)
        if stage is not None:
            now[stage] += n
    entered = {s: {e.domain for e in f.entries if e.to_stage is s} for s in STAGE_ORDER}
    regressions = Counter(
        e.from_stage for e in f.entries if k.is_regression(e.from_stage, e.to_stage)
    )
    values = _values(f, entered)
    return [
        StageKpis(
            stage=stage.value,
            accounts=now[stage],
            entered=len(entered[stage]),
            regressions=regressions[stage],
            kpis=[
                Kpi(
                    name=spec.name,
                    value=values[spec.name],
                    unit=spec.unit,
                    definition=spec.definition,
                )
                for spec in KPIS
                if spec.stage is stage
            ],
        )
        for stage in STAGE_ORDER
    ]


def _values(f: Figures, entered: dict[Stage, set[str]]) -> dict[str, float | None]:
    targets = f.activity[True]
    everyone = {n: targets[n] + f.activity[False][n] for n in targets}
    opportunities, won = len(entered[Stage.OPPORTUNITY]), len(entered[Stage.WON])
    amounts = {kind: math.fsum(a for kd, a in f.revenue if kd == kind) for kind in _KINDS}
    return {
        "target_accounts": f.targets,
        "surges": targets["surges"],
        "relationship_score": f.relationships[Stage.TARGET].mean_score,
        "declining_relationships": f.relationships[Stage.TARGET].declining,
        "customer_relationship_score": f.relationships[Stage.RETENTION].mean_score,
        "customer_declining_relationships": f.relationships[Stage.RETENTION].declining,
        **{name: targets[name] for name in _ENGAGEMENT_COUNTS},
        "engaged_accounts": f.engaged,
        "engaged_share": k.engaged_share(f.engaged, f.targets),
        "not_engaged_share": k.not_engaged_share(f.engaged, f.targets),
        "spend": f.spend,
        "cost_per_engaged_account": k.cost_per_account(f.spend, f.engaged),
        "web_research_spikes": targets["web_research_spikes"],
        "web_research_spikes_per_account": k.per_account(targets["web_research_spikes"], f.targets),
        "deanonymisation_rate": f.deanonymisation_rate,
        "opportunity_accounts": opportunities,
        **_committee(f.opportunity_states),
        "opportunity_rate": k.opportunity_rate(opportunities, f.targets),
        "pipeline": f.pipeline,
        "days_first_engagement_to_opportunity": _median_days(f, Stage.OPPORTUNITY),
        "cost_per_opportunity": k.cost_per_account(f.spend, opportunities),
        "won_accounts": won,
        "win_rate": k.win_rate(won, f.targets),
        "new_revenue": amounts["new"],
        "deal_cycle_days": _median_days(f, Stage.WON),
        "touches_per_won_account": k.touches_per_won_account(
            f.touches_until_won, entered[Stage.WON]
        ),
        "cost_per_won_account": k.cost_per_account(f.spend, won),
        "renewed_customers": f.renewal.renewed,
        "renewal_rate": f.renewal.rate,
        "competitor_surges": everyone["competitor_surges"],
        "average_contract_value": k.average_contract_value(
            a for kind, a in f.revenue if kind in ("new", "renewal")
        ),
        "expansion_revenue": amounts["expansion"],
        "total_revenue": k.total_revenue(amounts["new"], amounts["renewal"], amounts["expansion"]),
        "nps": k.net_promoter_score(f.nps_scores),
    }


_KINDS: tuple[k.TermKind, ...] = ("new", "renewal", "expansion", "churn")
_ENGAGEMENT_COUNTS = (
    "ad_impressions", "view_through_visits", "view_through_conversions", "ad_clicks", "visits",
    "high_value_visits", "chats",
)  # fmt: skip


def _median_days(f: Figures, stage: Stage) -> float | None:
    return k.median_days(
        k.days_since_first_engagement(f.first_engaged.get(domain), at)
        for (domain, entered), at in _first_entries(f.entries, (stage,)).items()
        if entered is stage
    )


def _committee(documents: list[dict[str, Any]]) -> dict[str, float | None]:
    """Stakeholders and penetration (``schemas.kpis.stakeholders``, ``penetration``) of
    the accounts with an opportunity, from their states."""
    committees = [_committee_of(d) for d in documents]
    return {"stakeholders": k.stakeholders(committees), "penetration": k.penetration(committees)}


def _committee_of(document: dict[str, Any]) -> k.Committee:
    """An account's committee as its state knows it: its ``contacts`` (else the older
    ``contacts_seen`` keys), and the engaged stakeholders as its committee score counts
    them (engaged within the engagement window, like the account detail); unknown for
    states written before that score existed."""
    contacts = document.get("contacts")
    if not isinstance(contacts, dict):
        contacts = document.get("contacts_seen") or ()
    committee = ((document.get("scores") or {}).get("committee")) or {}
    engaged = committee.get("engaged")
    known = engaged if isinstance(engaged, int) else None
    return k.Committee(contacts=len(contacts), engaged=known)


def _stage(value: str | None) -> Stage | None:
    try:
        return Stage(value) if value is not None else None
    except ValueError:
        return None
