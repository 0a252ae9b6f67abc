"""The funnel for a period and a tier: accounts per stage now, reached, conversion, entries
in the period, velocity (median days in stage) and regressions, from the stage history;
and each stage's KPIs (those of ``/v1/kpis``, over the period's whole UTC days)."""

from __future__ import annotations

from collections import Counter, defaultdict
from datetime import date, datetime, time, timedelta
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


DESCRIPTION = (
    "Stage moves (entered, velocity, regressions) are counted in the half-open window "
    "[`from`, `to`). KPIs are counted on whole UTC days: from the UTC day of `from` to the "
    "UTC day of `to`, or to the day before it when `to` is midnight UTC; so "
    "from=2026-04-01T00:00:00Z&to=2026-04-02T00:00:00Z is 1 April for both. "
    "`target_accounts` and `engaged_share` are the KPIs of those names."
)


@router.get(
    "/funnel",
    response_model=FunnelReport,
    summary="The funnel, per period and tier",
    description=DESCRIPTION,
)
async def get_funnel(
    request: Request,
    period_from: Annotated[datetime | None, Query(alias="from")] = None,
    period_to: Annotated[datetime | None, Query(alias="to")] = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
) -> FunnelReport:
    # In UTC first: the stage history is queried in UTC and KPI days are UTC days.
    start = to_utc(period_from, "from") if period_from is not None else None
    end = to_utc(period_to, "to") if period_to is not None else None
    if start is not None and end is not None and start >= end:
        raise BadRequest("`from` must be before `to`", field="from")
    days = kpi_days(start, end)
    async with request.state.api.readers() as session:
        current, furthest = await queries.stage_counts(session, tier)
        moves = await queries.stage_moves(session, start, end, tier)
        figures = await read_figures(session, days, tier)
    kpis_by_stage = {group.stage: group.kpis for group in stage_kpis(figures)}
    return FunnelReport(
        period_from=period_from,
        period_to=period_to,
        tier=tier,
        stages=[
            figures_of.model_copy(update={"kpis": kpis_by_stage.get(figures_of.stage, [])})
            for figures_of in stage_figures(current, furthest, moves)
        ],
        # As the KPIs of these names: targets now, and those engaged within the period.
        target_accounts=figures.targets,
        engaged_share=kpis.engaged_share(figures.engaged, figures.targets),
    )


def kpi_days(start: datetime | None, end: datetime | None) -> Period:
    """The whole UTC days the KPIs of the UTC window [start, end) are counted on: from
    ``start``'s day to ``end``'s, or to the day before when ``end`` is midnight."""
    last: date | None = None
    if end is not None:
        last = end.date()
        if end.time() == time.min:
            if last == date.min:  # [.., 0001-01-01T00:00Z): no day at all
                raise BadRequest("`to` must be after 0001-01-01T00:00:00Z", field="to")
            last -= timedelta(days=1)
    return Period(start.date() if start is not None else None, last)


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
