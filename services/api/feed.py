"""The change feed and the live stream: every stage, tier and surge change, in log order.

``GET /v1/changes?cursor=`` returns what happened after the cursor and the cursor to use
next: a poller never rescans and never misses a change. ``GET /v1/stream`` pushes the same
changes as Server-Sent Events whose ids are cursors, so a reconnecting client resumes with
``Last-Event-ID``.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from typing import Annotated, Any

from fastapi import APIRouter, Header, Query, Request
from fastapi.responses import StreamingResponse
from pydantic import BaseModel, Field

from schemas.envelope import normalize_domain
from schemas.events import DerivedEvent
from services.api.accounts import DOMAIN_PATTERN
from services.api.change_tail import PAGE
from services.api.cursors import cursor_count, decode_cursor, encode_cursor
from services.api.errors import BadRequest
from services.api.listing import MAX_PAGE
from services.kit import metrics
from services.kit.changes import START, Position, changes_after, newest_position
from services.kit.stopping import wait_any

router = APIRouter()

HEARTBEAT_S = 15.0


class ChangePage(BaseModel):
    items: list[DerivedEvent]
    next_cursor: str = Field(description="Pass back as `cursor`; unchanged when nothing new.")


@router.get(
    "/changes",
    response_model=ChangePage,
    # Absent fields left out, as on the stream and in webhooks: one shape of a change.
    response_model_exclude_none=True,
    summary="Changes after a cursor, in order",
)
async def list_changes(
    request: Request,
    cursor: Annotated[
        str | None, Query(max_length=200, description="Omit to start at the beginning")
    ] = None,
    account: Annotated[str | None, Query(max_length=253, pattern=DOMAIN_PATTERN)] = None,
    limit: Annotated[int | None, Query(ge=1, le=MAX_PAGE)] = None,
) -> ChangePage:
    settings = request.state.api.settings
    size = limit or settings.api_page_default
    after = position_of(cursor, field="cursor")
    domain = _account(account) if account is not None else None
    async with request.state.api.readers() as session:
        rows = await changes_after(session, after, size, domain)
    last = rows[-1][0] if rows else after
    return ChangePage(items=[payload for _, payload in rows], next_cursor=cursor_of(last))


@router.get(
    "/stream",
    summary="Server-Sent Events of every change; resumable with Last-Event-ID",
    response_class=StreamingResponse,
    responses={200: {"content": {"text/event-stream": {}}}},
)
async def stream(
    request: Request,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    last_event_id: Annotated[str | None, Header(max_length=200)] = None,
) -> StreamingResponse:
    resume = last_event_id or cursor
    after = position_of(resume, field="Last-Event-ID" if last_event_id else "cursor")
    if resume is None:
        after = await _newest(request)  # a new subscriber wants what happens from now on
    headers = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
    return StreamingResponse(
        _events(request, after), media_type="text/event-stream", headers=headers
    )


async def _events(request: Request, after: Position) -> AsyncIterator[bytes]:
    """The changes after ``after``, then each as it arrives: from the change tail's memory
    once caught up with it, from the database before (see ``change_tail``)."""
    state = request.state.api
    tail = state.changes
    quiet_since = time.monotonic()
    metrics.API_STREAMS_OPEN.inc()
    try:
        yield b"retry: 2000\n\n"
        while not await request.is_disconnected():
            arrivals = tail.ticket()
            rows = tail.after(after)
            if rows is None:
                metrics.API_CHANGE_LOG_READS.labels("stream").inc()
                async with state.readers() as session:
                    rows = await changes_after(session, after, PAGE)
            for position, payload in rows:
                yield sse(cursor_of(position), str(payload["type"]), payload)
                after = position
            if rows:
                quiet_since = time.monotonic()
                continue
            if time.monotonic() - quiet_since >= HEARTBEAT_S:
                quiet_since = time.monotonic()
                yield b": keep-alive\n\n"
            await wait_any([arrivals], state.settings.api_stream_poll_s)
    finally:
        metrics.API_STREAMS_OPEN.dec()


async def _newest(request: Request) -> Position:
    async with request.state.api.readers() as session:
        return await newest_position(session)


def sse(event_id: str, event: str, data: dict[str, Any]) -> bytes:
    body = json.dumps(data, separators=(",", ":"))
    return f"id: {event_id}\nevent: {event}\ndata: {body}\n\n".encode()


def cursor_of(position: Position) -> str:
    return encode_cursor({"k": "changes", "x": position.txid, "s": position.seq})


def position_of(cursor: str | None, *, field: str) -> Position:
    try:
        decoded = decode_cursor(cursor, kind="changes")
    except BadRequest:
        raise BadRequest("not a cursor this API returned", field=field) from None
    if decoded is None:
        return START
    # bigint columns: a larger number would fail in the database, not here
    return Position(
        cursor_count(decoded.get("x"), field=field), cursor_count(decoded.get("s"), field=field)
    )


def _account(value: str) -> str:
    """As every domain input is read: case, scheme and "www." do not matter."""
    try:
        return normalize_domain(value)
    except ValueError as error:
        raise BadRequest(str(error), field="account") from None
