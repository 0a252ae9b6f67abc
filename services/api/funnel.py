"""The funnel for a period and a tier: accounts per stage now, reached, conversion, entries
in the period, velocity (median days in stage) and regressions, from the stage history;
and each stage's KPIs (those of ``/v1/kpis``, over the period's whole UTC days)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from schemas import kpis
from schemas.events import Stage
from services.api import queries
from services.api.edge import to_utc
from services.api.errors import BadRequest
from services.api.kpi_queries import Period
from services.api.kpis import read_figures, stage_kpis
from services.api.listing import STAGES
from services.api.models import FunnelReport, StageFigures

router = APIRouter()

RANK = {stage: index for index, stage in enumerate(STAGES)}
Move = tuple[str | None, str | None, datetime, datetime | None]


@router.get("/funnel", response_model=FunnelReport, summary="The funnel, per period and tier")
async def get_funnel(
    request: Request,
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
) -> FunnelReport:
    for name, moment in (("from", period_from), ("to", period_to)):
        if moment is not None:
            to_utc(moment, name)  # the stage history is queried in UTC
    if period_from and period_to and period_from >= period_to:
        raise BadRequest("`from` must be before `to`", field="from")
    days = Period(
        period_from.date() if period_from else None, period_to.date() if period_to else None
    )
    async with request.state.api.sessions() as session:
        current, furthest = await queries.stage_counts(session, tier)
        moves = await queries.stage_moves(session, period_from, period_to, tier)
        figures = await read_figures(session, days, tier)
    in_funnel = sum(current.values())
    kpis_by_stage = {group.stage: group.kpis for group in stage_kpis(figures)}
    return FunnelReport(
        period_from=period_from,
        period_to=period_to,
        tier=tier,
        stages=[
            figures_of.model_copy(update={"kpis": kpis_by_stage.get(figures_of.stage, [])})
            for figures_of in stage_figures(current, furthest, moves)
        ],
        target_accounts=in_funnel,
        engaged_share=kpis.engaged_share(in_funnel - current.get("target", 0), in_funnel),
    )


def stage_figures(
    current: dict[str, int], furthest: dict[int, int], moves: list[Move]
) -> list[StageFigures]:
    """Pure: the per-stage figures from counts and the period's stage moves."""
    conversions = kpis.stage_conversions(kpis.reached_from_rank_counts(furthest))
    reached = [conversions[0].reached_from, *(c.reached_to for c in conversions)]
    entered = Counter(to for _, to, _, _ in moves if to)
    regressions = Counter(
        before
        for before, after, _, _ in moves
        if before in RANK and after in RANK and kpis.is_regression(Stage(before), Stage(after))
    )
    days: dict[str, list[float]] = defaultdict(list)
    for _, to, at, left_at in moves:
        if to and left_at is not None:
            days[to].append(kpis.days_between(at, left_at))
    return [
        StageFigures(
            stage=name,
            accounts=current.get(name, 0),
            reached=reached[i],
            conversion_from_previous=conversions[i - 1].rate if i else None,
            entered=entered[name],
            entered_conversion_from_previous=_ratio([entered[s] for s in STAGES], i),
            median_days_in_stage=kpis.median_days(days[name]),
            regressions=regressions[name],
        )
        for i, name in enumerate(STAGES)
    ]


def _ratio(counts: list[int], i: int) -> float | None:
    return kpis.ratio(counts[i], counts[i - 1]) if i else None
