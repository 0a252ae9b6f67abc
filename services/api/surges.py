"""Recent surge starts and ends, newest change first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from schemas.envelope import NO_NUL
from services.api import queries
from services.api.cursors import after_time_and_id, decode_cursor, time_and_id
from services.api.edge import to_utc
from services.api.errors import BadRequest
from services.api.listing import MAX_PAGE
from services.api.models import SurgePage, SurgeRecord

router = APIRouter()

SINCE = (
    "Only surges that started or ended at or after this ISO 8601 instant with its zone "
    "(their `changed_at`), e.g. 2026-04-01T00:00:00Z."
)


@router.get(
    "/surges",
    response_model=SurgePage,
    summary="Recent surges, filterable",
    description="Surge starts and ends, newest change first: by `changed_at`, the later of "
    "`started_at` and `ended_at`, so a long surge that just ended comes first.",
)
async def list_surges(
    request: Request,
    topic: Annotated[str | None, Query(max_length=256, pattern=NO_NUL)] = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    active: Annotated[bool | None, Query(description="true: ongoing; false: ended")] = None,
    since: Annotated[str | None, Query(max_length=64, description=SINCE)] = None,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
) -> SurgePage:
    settings = request.state.api.settings
    size = limit or settings.api_page_default
    async with request.state.api.readers() as session:
        rows = await queries.surge_page(
            session,
            topic=topic,
            tier=tier,
            active=active,
            since=None if since is None else _instant(since, "since"),
            after=time_and_id(decode_cursor(cursor, kind="surges")),
            limit=size + 1,
        )
    items = [SurgeRecord(**row) for row in rows[:size]]
    last = items[-1] if len(rows) > size else None
    next_cursor = after_time_and_id("surges", last.changed_at, last.event_id) if last else None
    return SurgePage(items=items, next_cursor=next_cursor)


def _instant(text: str, field: str) -> datetime:
    """An ISO 8601 instant with its zone, in UTC; anything else is a 400 naming ``field``."""
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise BadRequest("an ISO 8601 instant, e.g. 2026-01-01T00:00:00Z", field=field) from None
    return to_utc(moment, field)
