"""HTTP routes of ingest: Segment batch API, the pixel, operations endpoints."""

from __future__ import annotations

import contextlib
import gzip
import json
import uuid
import zlib
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from services.ingest.collect import Collected, collect
from services.ingest.errors import RejectedMessage
from services.ingest.observe import observe_published
from services.ingest.pixel import GIF, NO_CACHE, pixel_message
from services.ingest.segment import Received, parse_time
from services.ingest.state import IngestState
from services.ingest.write_keys import key_from_basic_auth
from services.kit import metrics
from services.kit.publish import BrokerUnavailable

router = APIRouter()


class Rejection(BaseModel):
    index: int
    messageId: str | None = None
    field: str
    reason: str


class BatchAccepted(BaseModel):
    success: bool = True
    accepted: int = Field(description="Events the broker acknowledged.")
    ignored: int = Field(description="Valid calls with no ABM meaning (custom events, alias).")
    duplicates: int = Field(description="Repeated messageIds within this request, dropped.")
    rejected: list[Rejection] = Field(default_factory=list)


class SingleCall(StrEnum):
    TRACK = "track"
    PAGE = "page"
    IDENTIFY = "identify"
    GROUP = "group"
    ALIAS = "alias"


class Problem(Exception):
    def __init__(self, status: int, field: str, reason: str, headers: dict[str, str] | None = None):
        super().__init__(reason)
        self.status, self.field, self.reason, self.headers = status, field, reason, headers or {}


@router.post(
    "/v1/batch",
    response_model=BatchAccepted,
    summary="Segment HTTP Tracking API batch",
    responses={400: {}, 401: {}, 413: {}, 503: {}},
)
async def post_batch(
    request: Request,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> BatchAccepted:
    state: IngestState = request.state.ingest
    body = await json_body(request, state.settings.ingest_max_batch_bytes)
    messages = body.get("batch")
    if not isinstance(messages, list):
        raise Problem(400, "batch", "must be a list of messages")
    if len(messages) > state.settings.ingest_max_batch_events:
        raise Problem(413, "batch", f"more than {state.settings.ingest_max_batch_events} events")
    collected = await _collect(state, authorization, body, messages)
    return await accepted(state, response, collected, x_request_id)


@router.post(
    "/v1/{call}",
    response_model=BatchAccepted,
    summary="Segment HTTP Tracking API single call (track, page, identify, group, alias)",
    responses={400: {}, 401: {}, 404: {}, 413: {}, 503: {}},
)
async def post_single(
    call: SingleCall,
    request: Request,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> BatchAccepted:
    """The whole body is one message, so a rejected message is a 400 with its reason."""
    state: IngestState = request.state.ingest
    body = await json_body(request, state.settings.ingest_max_event_bytes)
    collected = await collect_single(state, authorization, body, call.value)
    return await accepted(state, response, collected, x_request_id)


async def collect_single(
    state: IngestState, authorization: str | None, body: dict[str, Any], call: str
) -> Collected:
    """One Segment call as the whole body; its rejection is the request's 400."""
    message = {**body, "type": body.get("type") or call}
    if message["type"] != call:
        raise Problem(400, "type", f"{str(message['type'])[:32]!r} sent to /v1/{call}")
    collected = await _collect(state, authorization, body, [message])
    if collected.rejected:
        [rejection] = collected.rejected
        raise Problem(400, rejection["field"], rejection["reason"])
    return collected


async def _collect(
    state: IngestState, authorization: str | None, body: dict[str, Any], messages: list[Any]
) -> Collected:
    source = await authenticate(state, authorization, body)
    received = Received(
        at=datetime.now(UTC), source=source, sent_at=_sent_at(body), context=_context(body)
    )
    return collect(messages, received, state.visitors, state.settings.ingest_max_event_bytes)


async def accepted(
    state: IngestState, response: Response, collected: Collected, x_request_id: str | None
) -> BatchAccepted:
    request_id = x_request_id or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    await publish_collected(state, collected, request_id)
    return BatchAccepted(
        accepted=len(collected.events),
        ignored=collected.ignored,
        duplicates=collected.duplicates,
        rejected=[Rejection(**r) for r in collected.rejected],
    )


@router.get("/p.gif", summary="Tracking pixel: always a 1x1 GIF", response_class=Response)
async def pixel(request: Request) -> Response:
    state: IngestState = request.state.ingest
    query = {"ua": request.headers.get("user-agent", ""), **request.query_params}
    source = await state.write_keys.source(query.get("k", "")) if query.get("k") else None
    if source is None:
        metrics.INGEST_EVENTS.labels("page_viewed", "unauthenticated").inc()
    else:
        received = Received(at=datetime.now(UTC), source=source)
        collected = collect([pixel_message(query)], received, state.visitors, 4096)
        # A pixel cannot retry or read errors; a failure is counted in the metrics.
        with contextlib.suppress(Problem):
            await publish_collected(state, collected, uuid.uuid4().hex)
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


async def publish_collected(state: IngestState, collected: Collected, request_id: str) -> None:
    try:
        await state.publisher.publish(collected.events, collected.dead)
    except BrokerUnavailable as error:
        metrics.INGEST_BROKER_ERRORS.inc()
        raise Problem(
            503, "broker", "not acknowledged in time; retry", {"Retry-After": "5"}
        ) from error
    observe_published(collected, request_id)


async def authenticate(state: IngestState, authorization: str | None, body: dict[str, Any]) -> str:
    key = key_from_basic_auth(authorization) or body.get("writeKey")
    if not isinstance(key, str) or not key:
        raise Problem(401, "writeKey", "missing: send HTTP Basic auth with the write key")
    source = await state.write_keys.source(key)
    if source is None:
        raise Problem(401, "writeKey", "unknown or revoked write key")
    return source


async def json_body(request: Request, max_bytes: int) -> dict[str, Any]:
    raw = await _bounded_body(request, max_bytes)
    if request.headers.get("content-encoding", "").lower() == "gzip":
        raw = _gunzip(raw, max_bytes)
    try:
        document = json.loads(raw)
    except (ValueError, UnicodeDecodeError):
        raise Problem(400, "body", "not valid JSON") from None
    if not isinstance(document, dict):
        raise Problem(400, "body", "must be a JSON object")
    return document


async def _bounded_body(request: Request, max_bytes: int) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise Problem(413, "body", f"larger than {max_bytes // 1024} KB")
        chunks.append(chunk)
    return b"".join(chunks)


def _gunzip(raw: bytes, max_bytes: int) -> bytes:
    decompressor = zlib.decompressobj(16 + zlib.MAX_WBITS)
    try:
        data = decompressor.decompress(raw, max_bytes + 1)
    except (zlib.error, gzip.BadGzipFile):
        raise Problem(400, "body", "Content-Encoding is gzip but the body is not") from None
    if len(data) > max_bytes:
        raise Problem(413, "body", f"larger than {max_bytes // 1024} KB once decompressed")
    return data


def _sent_at(body: dict[str, Any]) -> datetime | None:
    try:
        return parse_time(body.get("sentAt"))
    except RejectedMessage as rejection:
        raise Problem(400, "sentAt", rejection.reason) from None


def _context(body: dict[str, Any]) -> dict[str, Any] | None:
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise Problem(400, "context", "must be an object")
    return context


def problem_response(problem: Problem) -> JSONResponse:
    return JSONResponse(
        {
            "success": False,
            "status": problem.status,
            "field": problem.field,
            "reason": problem.reason,
        },
        status_code=problem.status,
        headers=problem.headers,
    )
