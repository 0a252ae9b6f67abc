"""Recent surge starts and ends, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from fastapi import APIRouter, Query, Request

from schemas.envelope import NO_NUL
from services.api import queries
from services.api.cursors import decode_cursor, encode_cursor
from services.api.errors import BadRequest
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
            session, topic=topic, tier=tier, active=active, after=_after(cursor), limit=size + 1
        )
    items = [SurgeRecord(**row) for row in rows[:size]]
    last = items[-1] if len(rows) > size else None
    next_cursor = (
        encode_cursor({"k": "surges", "t": last.started_at.isoformat(), "e": last.event_id})
        if last else None
    )  # fmt: skip
    return SurgePage(items=items, next_cursor=next_cursor)


def _after(cursor: str | None) -> tuple[datetime, str] | None:
    position = decode_cursor(cursor, kind="surges")
    if position is None:
        return None
    try:
        return datetime.fromisoformat(str(position["t"])), str(position["e"])
    except (KeyError, ValueError):
        raise BadRequest("not a cursor this API returned", field="cursor") from None
