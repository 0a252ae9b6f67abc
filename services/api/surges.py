"""Recent surge starts and ends, newest first."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from schemas.envelope import NO_NUL
from services.api import queries
from services.api.cursors import after_time_and_id, decode_cursor, time_and_id
from services.api.listing import MAX_PAGE
from services.api.models import SurgePage, SurgeRecord

router = APIRouter()


@router.get("/surges", response_model=SurgePage, summary="Recent surges, filterable")
async def list_surges(
    request: Request,
    topic: Annotated[str | None, Query(max_length=256, pattern=NO_NUL)] = None,
    tier: Annotated[int | None, Query(ge=1, le=3)] = None,
    active: Annotated[bool | None, Query(description="true: ongoing; false: ended")] = None,
    cursor: Annotated[str | None, Query(max_length=600)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
) -> SurgePage:
    settings = request.state.api.settings
    size = limit or settings.api_page_default
    async with request.state.api.sessions() as session:
        rows = await queries.surge_page(
            session,
            topic=topic,
            tier=tier,
            active=active,
            after=time_and_id(decode_cursor(cursor, kind="surges")),
            limit=size + 1,
        )
    items = [SurgeRecord(**row) for row in rows[:size]]
    last = items[-1] if len(rows) > size else None
    next_cursor = after_time_and_id("surges", last.started_at, last.event_id) if last else None
    return SurgePage(items=items, next_cursor=next_cursor)
