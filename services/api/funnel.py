"""The funnel: counts per stage, how many ever reached each stage, conversion."""

from __future__ import annotations

from fastapi import APIRouter, Request

from services.api import queries
from services.api.listing import STAGES
from services.api.models import FunnelReport, StageFigures

router = APIRouter()


@router.get("/funnel", response_model=FunnelReport, summary="Counts and conversion per stage")
async def get_funnel(request: Request) -> FunnelReport:
    async with request.state.api.sessions() as session:
        current, furthest = await queries.stage_counts(session)
    reached = [sum(n for rank, n in furthest.items() if rank >= i) for i in range(len(STAGES))]
    stages = [
        StageFigures(
            stage=name,
            accounts=current.get(name, 0),
            reached=reached[i],
            conversion_from_previous=(reached[i] / reached[i - 1])
            if i and reached[i - 1]
            else None,
        )
        for i, name in enumerate(STAGES)
    ]
    in_funnel = sum(current.values())
    engaged_or_further = in_funnel - current.get("target", 0)
    return FunnelReport(
        stages=stages,
        target_accounts=in_funnel,
        engaged_share=(engaged_or_further / in_funnel) if in_funnel else None,
    )
