"""HTTP routes of ingest: the Segment API, our native batch endpoint, the pixel."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import Mapping
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Any

from fastapi import APIRouter, Header, Path, Request
from fastapi.responses import Response
from pydantic import BaseModel, Field
from starlette.types import Scope

from services.ingest.bodies import json_body, json_body_and_bytes
from services.ingest.client_address import header, scope_context
from services.ingest.collect import Collected, Originals, Translate, collect
from services.ingest.errors import RETRY_AFTER_S, Problem, RejectedMessage
from services.ingest.native import collect_native
from services.ingest.observe import observe_published
from services.ingest.openapi_docs import (
    NATIVE_BATCH_BODY,
    PIXEL_QUERY,
    SEGMENT_BATCH_BODY,
    SEGMENT_SINGLE_BODY,
)
from services.ingest.originals import ArrayElements
from services.ingest.pixel import GIF, MAX_HIT_BYTES, NO_CACHE, pixel_message, pixel_query
from services.ingest.segment import Received, parse_time
from services.ingest.state import IngestState
from services.ingest.write_keys import WriteKeyAccess, WriteKeysUnavailable, key_from_basic_auth
from services.kit import metrics
from services.kit.publish import BrokerUnavailable

router = APIRouter()

# The outcome of pixel hits whose write key could not be checked (database down or slow).
KEY_LOOKUP_FAILED = "key_lookup_failed"

PROBLEMS: dict[int | str, dict[str, Any]] = {
    400: {"description": "The body is unusable: not JSON, or not the expected envelope."},
    401: {"description": "Missing, unknown or revoked write key."},
    413: {"description": "Body larger than 500 KB, or more than 2,500 events."},
    503: {
        "description": "The broker did not acknowledge in time, or the write key could not be "
        "checked (database down or slow): retry after Retry-After."
    },
}


class Rejection(BaseModel):
    index: int = Field(description="Position of the message in the request (0 for one call).")
    messageId: str | None = Field(default=None, description="Its messageId (event_id).")
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


SINGLE_CALLS = frozenset(c.value for c in SingleCall)


def _batch_items(state: IngestState, body: dict[str, Any], field: str, noun: str) -> list[Any]:
    """The body's list of items under ``field``: 400 if not a list, 413 past the limit."""
    items = body.get(field)
    if not isinstance(items, list):
        raise Problem(400, field, f"must be a list of {noun}")
    limit = state.settings.ingest_max_batch_events
    if len(items) > limit:
        raise Problem(413, field, f"more than {limit} events")
    return items


@router.post(
    "/v1/batch",
    response_model=BatchAccepted,
    summary="Segment HTTP Tracking API batch",
    responses=PROBLEMS,
    openapi_extra=SEGMENT_BATCH_BODY,
)
async def post_batch(
    request: Request,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> BatchAccepted:
    state: IngestState = request.state.ingest
    body, raw = await json_body_and_bytes(request, state.settings.ingest_max_batch_bytes)
    messages = _batch_items(state, body, "batch", "messages")
    originals = ArrayElements(raw, "batch")
    collected = await _collect(state, authorization, body, messages, originals=originals)
    return await accepted(state, response, collected, x_request_id, "/v1/batch")


@router.post(
    "/v1/events",
    response_model=BatchAccepted,
    summary="Native batch: events in our own schemas (CRMs, server-side senders)",
    description=(
        "Each item is an inbound event of our schemas without `received_at` and `source` "
        "(set by ingest); `event_id` is required and is the idempotency key, `occurred_at` "
        "is corrected for the sender's clock skew with the body's `sent_at`. Bad items are "
        "rejected alone (listed in `rejected`, sent to the dead-letter topic); repeated "
        "event ids within a request are dropped. The write key travels as HTTP Basic auth "
        "(`base64(key + ':')`) or as the body's `writeKey`."
    ),
    responses=PROBLEMS,
    openapi_extra=NATIVE_BATCH_BODY,
)
async def post_events(
    request: Request,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> BatchAccepted:
    state: IngestState = request.state.ingest
    body, raw = await json_body_and_bytes(request, state.settings.ingest_max_batch_bytes)
    items = _batch_items(state, body, "events", "events")
    source = await authenticate(state, authorization, body)
    received = Received(
        at=datetime.now(UTC),
        source=source,
        sent_at=_sent_at(body, "sent_at"),
        own_domains=state.settings.ingest_own_domains,
    )
    limit = state.settings.ingest_max_event_bytes
    originals = ArrayElements(raw, "events")
    collected = collect_native(items, received, state.visitors, limit, originals)
    return await accepted(state, response, collected, x_request_id, "/v1/events")


@router.post(
    "/v1/{call}",
    response_model=BatchAccepted,
    summary="Segment HTTP Tracking API single call (track, page, identify, group, alias)",
    responses={
        **PROBLEMS,
        400: {"description": "Unusable body, or the message was rejected (dead-lettered)."},
        404: {"description": "Not one of the single calls."},
    },
    openapi_extra=SEGMENT_SINGLE_BODY,
)
async def post_single(
    # A plain string, checked below: an enum path parameter answers 422 for an unknown call,
    # where the documented answer is a 404 naming the path.
    call: Annotated[
        str,
        Path(description="The call.", json_schema_extra={"enum": [c.value for c in SingleCall]}),
    ],
    request: Request,
    response: Response,
    authorization: Annotated[str | None, Header()] = None,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> BatchAccepted:
    """The whole body is one message, so a rejected message is a 400 with its reason."""
    if call not in SINGLE_CALLS:
        raise Problem(404, "path", f"no such endpoint: POST {request.url.path[:80]}")
    state: IngestState = request.state.ingest
    body = await json_body(request, state.settings.ingest_max_event_bytes)
    route = f"/v1/{call}"
    collected = await collect_single(state, authorization, body, call, route)
    return await accepted(state, response, collected, x_request_id, route)


async def collect_single(
    state: IngestState,
    authorization: str | None,
    body: dict[str, Any],
    call: str,
    route: str = "/v1/t",
) -> Collected:
    """One Segment call as the whole body; its rejection is the request's 400.

    A rejected message is dead-lettered first, as a batch's rejects are: the 400 is
    answered only once the broker holds it (503 when it cannot).
    """
    # The body is the message, but its writeKey is a credential: never in a dead letter.
    message = {k: v for k, v in body.items() if k != "writeKey"}
    message["type"] = body.get("type") or call
    collected = await _collect(state, authorization, body, [message], _only(call))
    if collected.rejected:
        await publish_collected(state, collected, uuid.uuid4().hex, route)
        [rejection] = collected.rejected
        raise Problem(400, rejection["field"], rejection["reason"])
    return collected


def _only(call: str) -> Translate:
    """A single-call endpoint takes messages of its own type only."""

    def check(message: Mapping[str, Any]) -> Mapping[str, Any]:
        if message.get("type") != call:
            raise RejectedMessage("type", f"{str(message.get('type'))[:32]!r} sent to /v1/{call}")
        return message

    return check


async def _collect(
    state: IngestState,
    authorization: str | None,
    body: dict[str, Any],
    messages: list[Any],
    translate: Translate | None = None,
    originals: Originals | None = None,
) -> Collected:
    access = await authorize(state, authorization, body)
    received = Received(
        at=datetime.now(UTC),
        source=access.source,
        sent_at=_sent_at(body),
        context=_context(body),
        ip_policy=access.ip_policy,
        own_domains=state.settings.ingest_own_domains,
    )
    limit = state.settings.ingest_max_event_bytes
    ranges = state.ip_ranges.lookup
    return collect(messages, received, state.visitors, limit, translate, ranges, originals)


async def accepted(
    state: IngestState,
    response: Response,
    collected: Collected,
    x_request_id: str | None,
    route: str = "other",
) -> BatchAccepted:
    request_id = x_request_id or uuid.uuid4().hex
    response.headers["X-Request-ID"] = request_id
    await publish_collected(state, collected, request_id, route)
    return BatchAccepted(
        accepted=len(collected.events),
        ignored=collected.ignored,
        duplicates=collected.duplicates,
        rejected=[Rejection(**r) for r in collected.rejected],
    )


@router.get(
    "/p.gif",
    summary="Tracking pixel: always a 1x1 GIF",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}, "description": "The 43-byte GIF."}},
    openapi_extra=PIXEL_QUERY,
)
async def pixel(request: Request) -> Response:
    """Documents the pixel; hits are served by ``PixelFastPath`` (services/ingest/pixel_path.py)
    in front of routing, which shares ``record_pixel_hit`` with this route."""
    await record_pixel_hit(request.state.ingest, request.scope)
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


async def record_pixel_hit(state: IngestState, scope: Scope) -> None:
    """Produce the event a pixel hit describes; never raises for bad input, an unavailable
    broker or write keys that cannot be checked (a pixel cannot read errors: they are
    counted in the metrics, and a bad ``data`` is dead-lettered like any rejected message)."""
    query = {"ua": header(scope, b"user-agent") or "", **pixel_query(scope)}
    key = query.pop("k", "")  # a credential: never part of the message or a dead letter
    try:
        access = await state.write_keys.access(key) if key else None
    except WriteKeysUnavailable:
        metrics.INGEST_EVENTS.labels("page_viewed", KEY_LOOKUP_FAILED).inc()
        return
    if access is None:
        metrics.INGEST_EVENTS.labels("page_viewed", "unauthenticated").inc()
    else:
        address = scope_context(scope, state.settings.ingest_trusted_proxies)
        received = Received(
            at=datetime.now(UTC),
            source=access.source,
            context=address,
            ip_policy=access.ip_policy,
            own_domains=state.settings.ingest_own_domains,
        )
        collected = collect(
            [query], received, state.visitors, MAX_HIT_BYTES, pixel_message, state.ip_ranges.lookup
        )
        with contextlib.suppress(Problem):
            await publish_collected(state, collected, os.urandom(16).hex(), "/p.gif")


async def publish_collected(
    state: IngestState, collected: Collected, request_id: str, route: str = "other"
) -> None:
    """Produce and wait for the acknowledgements; ``Problem(503)`` when they do not come.

    ``route`` labels the metrics (bot events per endpoint): a route template, never input.
    """
    try:
        await state.publisher.publish(collected.events, collected.dead)
    except BrokerUnavailable as error:
        metrics.INGEST_BROKER_ERRORS.inc()
        raise Problem(
            503, "broker", "not acknowledged in time; retry", {"Retry-After": RETRY_AFTER_S}
        ) from error
    observe_published(collected, request_id, route)


async def authenticate(state: IngestState, authorization: str | None, body: dict[str, Any]) -> str:
    return (await authorize(state, authorization, body)).source


async def authorize(
    state: IngestState, authorization: str | None, body: dict[str, Any]
) -> WriteKeyAccess:
    """The write key's source and IP policy; 401 when missing, unknown or revoked."""
    key = key_from_basic_auth(authorization) or body.get("writeKey")
    if not isinstance(key, str) or not key:
        raise Problem(401, "writeKey", "missing: send HTTP Basic auth with the write key")
    access = await write_key_access(state, key, "writeKey")
    if access is None:
        raise Problem(401, "writeKey", "unknown or revoked write key")
    return access


async def write_key_access(state: IngestState, key: str, field: str) -> WriteKeyAccess | None:
    """The key's access (None: unknown or revoked); ``Problem(503)`` when it cannot be
    checked now: the sender retries, as for a slow broker."""
    try:
        return await state.write_keys.access(key)
    except WriteKeysUnavailable as error:
        raise Problem(
            503, field, "the write key cannot be checked now; retry", {"Retry-After": RETRY_AFTER_S}
        ) from error


def _sent_at(body: dict[str, Any], field: str = "sentAt") -> datetime | None:
    try:
        return parse_time(body.get(field))
    except RejectedMessage as rejection:
        raise Problem(400, field, rejection.reason) from None


def _context(body: dict[str, Any]) -> dict[str, Any] | None:
    context = body.get("context")
    if context is not None and not isinstance(context, dict):
        raise Problem(400, "context", "must be an object")
    return context
