"""Read endpoints: one account, a filtered page of accounts, the funnel."""

from __future__ import annotations

import base64
import binascii
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request

from schemas.envelope import normalize_domain
from services.api import queries
from services.api.auth import require
from services.api.errors import BadRequest, NotFound
from services.api.models import (
    AccountDetail,
    AccountPage,
    AccountSummary,
    ActiveSurge,
    FunnelReport,
    StageFigures,
    StageTransition,
    TierTransition,
)
from services.api.queries import STAGES

router = APIRouter(prefix="/v1", dependencies=[require("read")])  # type: ignore[list-item]


@router.get("/accounts/{domain}", response_model=AccountDetail, summary="One account's state")
async def get_account(
    request: Request, domain: Annotated[str, Path(max_length=253)]
) -> AccountDetail:
    key = _domain(domain)
    async with request.state.api.sessions() as session:
        row = await queries.account(session, key)
        if row is None:
            raise NotFound(f"no account {key!r}")
        surges = await queries.active_surges(session, key)
        stages = await queries.transitions(session, key, "stage")
        tiers = await queries.transitions(session, key, "tier")
    state: dict[str, Any] = row.pop("state")
    return AccountDetail(
        **row,
        fit=state.get("fit", {}),
        stage_rule=state.get("stage_rule"),
        surges=[ActiveSurge(**s) for s in surges],
        stage_history=[_stage_transition(t) for t in stages],
        tier_history=[_tier_transition(t) for t in tiers],
        last_activity_by_channel=state.get("last_activity_by_channel", {}),
    )


@router.get("/accounts", response_model=AccountPage, summary="Accounts in the funnel, filtered")
async def list_accounts(
    request: Request,
    stage: Annotated[str | None, Query(description=f"One of {', '.join(STAGES)}")] = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    surging: bool | None = None,
    cursor: Annotated[str | None, Query(max_length=400)] = None,
    limit: Annotated[int | None, Query(ge=1)] = None,
) -> AccountPage:
    settings = request.state.api.settings
    size = limit or settings.api_page_default
    if size > settings.api_page_max:
        raise BadRequest(f"limit is at most {settings.api_page_max}", field="limit")
    if stage is not None and stage not in STAGES:
        raise BadRequest(f"unknown stage {stage!r}; one of {', '.join(STAGES)}", field="stage")
    async with request.state.api.sessions() as session:
        rows = await queries.account_page(
            session,
            stage=stage,
            tier=tier,
            surging=surging,
            after=_decode_cursor(cursor),
            limit=size + 1,
        )
    items = [AccountSummary(**r) for r in rows[:size]]
    more = len(rows) > size
    return AccountPage(items=items, next_cursor=_encode_cursor(items[-1].domain) if more else None)


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


def _domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except ValueError as error:
        raise BadRequest(str(error), field="domain") from None


def _encode_cursor(domain: str) -> str:
    return base64.urlsafe_b64encode(domain.encode()).decode().rstrip("=")


def _decode_cursor(cursor: str | None) -> str | None:
    if cursor is None:
        return None
    try:
        return base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
    except (binascii.Error, UnicodeDecodeError, ValueError):
        raise BadRequest("not a cursor this API returned", field="cursor") from None


def _stage_transition(row: dict[str, Any]) -> StageTransition:
    return StageTransition(
        from_stage=row["from_value"],
        to_stage=row["to_value"],
        at=row["occurred_at"],
        rule=row["rule"],
        config_version=row["config_version"],
        cause_event_ids=row["cause_event_ids"],
    )


def _tier_transition(row: dict[str, Any]) -> TierTransition:
    return TierTransition(
        from_tier=int(row["from_value"]) if row["from_value"] else None,
        to_tier=int(row["to_value"]) if row["to_value"] else None,
        at=row["occurred_at"],
        rule=row["rule"],
        cause_event_ids=row["cause_event_ids"],
    )
