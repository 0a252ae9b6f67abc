"""Account reads: one account with its explanation, and filtered, sorted pages."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Query, Request, Response

from schemas.envelope import NO_NUL, normalize_domain
from schemas.events import Stage
from services.api import queries
from services.api.cursors import after_time_and_id, decode_cursor, encode_cursor, time_and_id
from services.api.edge import to_utc
from services.api.errors import NotFound
from services.api.etag import matches, version_etag
from services.api.history import in_order_made
from services.api.listing import FIELDS, MAX_PAGE, Sort, account_filter, keyset, selected_fields
from services.api.models import (
    AccountDetail,
    AccountFields,
    AccountPage,
    ActiveSurge,
    CommitteeView,
    EngagementView,
    RelationshipView,
    Revenue,
    RoleFigures,
    StageTransition,
    TierTransition,
    TimelinePage,
    ViewThroughFigures,
)

router = APIRouter()

# What the path accepts, documented; normalisation (case, "www.") happens after.
DOMAIN_PATTERN = (
    r"^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?(\.[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?)+$"
)
DomainPath = Annotated[str, Path(min_length=3, max_length=253, pattern=DOMAIN_PATTERN)]


@router.get(
    "/accounts/{domain}",
    response_model=AccountDetail,
    summary="One account's state",
    responses={304: {"description": "Unchanged since the ETag in If-None-Match"}},
)
async def get_account(
    request: Request,
    response: Response,
    domain: DomainPath,
    if_none_match: Annotated[str | None, Header(max_length=1000)] = None,
) -> AccountDetail | Response:
    key = _domain(domain)
    async with request.state.api.reads.connect() as session:
        row: dict[str, Any] | None = None
        if if_none_match:  # the version alone first: a match reads no state
            version = await queries.account_version(session, key)
        else:
            found = await queries.account_and_version(session, key)
            row, version = found if found is not None else (None, None)
        if version is None:
            raise NotFound(f"no account {key!r}")
        etag = version_etag(key, version)
        if matches(if_none_match, etag):
            return Response(status_code=304, headers={"ETag": etag, "Cache-Control": "no-cache"})
        response.headers.update({"ETag": etag, "Cache-Control": "no-cache"})
        row = row or await queries.account(session, key)
        if row is None:
            raise NotFound(f"no account {key!r}")
        surges = await queries.active_surges(session, key)
        history = await queries.transitions(session, key)
    state: dict[str, Any] = row.pop("state")
    active = [ActiveSurge(**s) for s in surges]
    return AccountDetail(
        **row,
        fit=state.get("fit", {}),
        churn_risk=row["stage"] in CUSTOMER_STAGES and any(s.competitor for s in active),
        stakeholders=_stakeholders(state),
        **signals_of(state),
        revenue=_revenue(state),
        activity={k: int(v) for k, v in state.get("counters", {}).items()},
        stage_rule=state.get("stage_rule"),
        stage_cause_event_ids=[str(i) for i in state.get("stage_cause_event_ids") or ()],
        surges=active,
        stage_history=[_stage_transition(t) for t in in_order_made(_of_kind(history, "stage"))],
        tier_history=[_tier_transition(t) for t in in_order_made(_of_kind(history, "tier"))],
        last_activity_by_channel=state.get("last_activity_by_channel", {}),
    )


@router.get(
    "/accounts/{domain}/timeline",
    response_model=TimelinePage,
    summary="The account's recent events, newest first",
)
async def get_timeline(
    request: Request,
    domain: DomainPath,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
) -> TimelinePage:
    key = _domain(domain)
    size = limit or request.state.api.settings.api_page_default
    after = time_and_id(decode_cursor(cursor, kind=f"timeline:{key}"))
    async with request.state.api.readers() as session:
        rows = await queries.timeline(session, key, after, size + 1)
    page = rows[:size]
    last = page[-1] if len(rows) > size else None
    next_cursor = (
        after_time_and_id(f"timeline:{key}", last["occurred_at"], last["event_id"])
        if last
        else None
    )
    return TimelinePage(items=[r["payload"] for r in page], next_cursor=next_cursor)


@router.get(
    "/accounts",
    response_model=AccountPage,
    response_model_exclude_unset=True,
    summary="Accounts in the funnel: filter, sort, page, pick fields",
)
async def list_accounts(
    request: Request,
    stage: Stage | None = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    surging: Annotated[bool | None, Query(description="Any active surge")] = None,
    topic: Annotated[
        str | None, Query(max_length=256, pattern=NO_NUL, description="Active surge on this topic")
    ] = None,
    fit_min: Annotated[float | None, Query(ge=0, le=100)] = None,
    fit_max: Annotated[float | None, Query(ge=0, le=100)] = None,
    owner: Annotated[str | None, Query(max_length=256, pattern=NO_NUL)] = None,
    changed_since: Annotated[datetime | None, Query(description="Latest event at or after")] = None,
    sort: Sort = Sort.DOMAIN,
    fields: Annotated[
        str | None, Query(max_length=400, description=f"Comma-separated: {', '.join(FIELDS)}")
    ] = None,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
) -> AccountPage:
    settings = request.state.api.settings
    size = limit or settings.api_page_default
    criteria = account_filter(
        stage=stage.value if stage else None,
        tier=tier,
        surging=surging,
        topic=topic,
        fit_min=fit_min,
        fit_max=fit_max,
        owner=owner,
        changed_since=None if changed_since is None else to_utc(changed_since, "changed_since"),
    )
    order, wanted = keyset(sort.value, cursor), selected_fields(fields)
    async with request.state.api.readers() as session:
        rows = await queries.account_page(session, criteria, order, size + 1)
    page = rows[:size]
    items = [
        AccountFields(**{k: v for k, v in r.items() if wanted is None or k in wanted}) for r in page
    ]
    last = page[-1] if len(rows) > size else None
    next_cursor = (
        encode_cursor({"k": f"accounts:{order.sort}", "v": last[order.column], "d": last["domain"]})
        if last
        else None
    )
    return AccountPage(items=items, next_cursor=next_cursor)


CUSTOMER_STAGES = frozenset({"won", "retention", "expansion"})


def _revenue(state: dict[str, Any]) -> Revenue:
    """From the funnel's state document (its ``pipeline`` is the open opportunities' sum)."""
    return Revenue(
        pipeline=sum(float(v) for v in state.get("open_opportunities", {}).values()),
        won=float(state.get("won_revenue", 0.0)),
        renewals=float(state.get("renewal_revenue", 0.0)),
        expansion=float(state.get("expansion_revenue", 0.0)),
    )


def _mapping(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _stakeholders(state: dict[str, Any]) -> int:
    """Contacts identified: ``contacts`` (keys only), or ``contacts_seen`` in older states."""
    if isinstance(state.get("contacts"), dict):
        return len(state["contacts"])
    return len(state.get("contacts_seen") or [])


def signals_of(state: dict[str, Any]) -> dict[str, Any]:
    """The scores and view-through figures the funnel keeps in its state document, as
    ``AccountDetail`` fields: ``scores_as_of``, ``engagement``, ``relationship``,
    ``committee``, ``view_through`` (zeros for states written before the funnel kept them)."""
    scores = _mapping(state.get("scores"))
    engagement = _mapping(scores.get("engagement"))
    relationship = _mapping(scores.get("relationship"))
    committee = _mapping(scores.get("committee"))
    return {
        "scores_as_of": scores.get("as_of"),
        "engagement": EngagementView(
            score=engagement.get("score", 0.0),
            window_days=engagement.get("window_days", 0),
            contributions=_mapping(engagement.get("contributions")),
        ),
        "relationship": RelationshipView(
            score=relationship.get("score", 0.0),
            components=_mapping(relationship.get("components")),
            previous=relationship.get("previous", 0.0),
            trend=relationship.get("trend", "steady"),
            trend_days=relationship.get("trend_days", 0),
        ),
        "committee": CommitteeView(
            stakeholders=committee.get("stakeholders", _stakeholders(state)),
            engaged=committee.get("engaged", 0),
            penetration=committee.get("penetration"),
            roles={
                role: RoleFigures(**figures)
                for role, figures in _mapping(committee.get("roles")).items()
                if isinstance(figures, dict)
            },
        ),
        "view_through": {
            campaign: ViewThroughFigures(**counts)
            for campaign, counts in _mapping(state.get("view_through")).items()
            if isinstance(counts, dict)
        },
    }


def _domain(value: str) -> str:
    try:
        return normalize_domain(value)
    except ValueError:
        # Matches the documented pattern yet names no account once normalised ("www.io").
        raise NotFound(f"no account {value[:64]!r}") from None


def _of_kind(history: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [row for row in history if row["kind"] == kind]


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
        config_version=row["config_version"],
        cause_event_ids=row["cause_event_ids"],
    )
