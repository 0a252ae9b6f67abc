"""HTTP routes of the Snowplow tracker protocol: ``POST .../tp2`` and the GET pixel ``/i``.

Snowplow trackers send no write key header, so the key travels as the query parameter
``k`` (both routes) or as the tracker's app id ``aid``: configure the tracker with
``app_id=<write key>`` and the app id names the source. The key is dropped from the
payloads before they are mapped: a rejected payload is dead-lettered without it.

The browser tracker posts to tp2 from the page's origin with credentials, so tp2 answers
CORS preflights and reflects the origin, as the tag's beacon does.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, TypeGuard

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from services.ingest.bodies import json_body_and_bytes
from services.ingest.client_address import request_context
from services.ingest.collect import collect
from services.ingest.errors import Problem
from services.ingest.openapi_docs import SNOWPLOW_PIXEL_QUERY, SNOWPLOW_TP2_BODY
from services.ingest.originals import ArrayElements
from services.ingest.pixel import GIF, NO_CACHE
from services.ingest.routes import (
    KEY_LOOKUP_FAILED,
    PROBLEMS,
    BatchAccepted,
    accepted,
    publish_collected,
    write_key_access,
)
from services.ingest.segment import Received
from services.ingest.snowplow import to_segment
from services.ingest.state import IngestState
from services.ingest.tag import cors_headers
from services.ingest.write_keys import WriteKeyAccess, WriteKeysUnavailable
from services.kit import metrics

router = APIRouter()
TP2 = "/com.snowplowanalytics.snowplow/tp2"


@router.options(TP2, summary="CORS preflight of the browser tracker's POST", status_code=204)
async def tp2_preflight(origin: Annotated[str | None, Header()] = None) -> Response:
    return Response(status_code=204, headers=cors_headers(origin))


@router.post(
    TP2,
    response_model=BatchAccepted,
    summary="Snowplow tracker protocol 2 (payload_data)",
    responses=PROBLEMS,
    openapi_extra=SNOWPLOW_TP2_BODY,
)
async def post_tp2(
    request: Request,
    response: Response,
    origin: Annotated[str | None, Header()] = None,
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> BatchAccepted:
    cors = cors_headers(origin)
    try:
        result = await _tp2(request, response, x_request_id)
    except Problem as problem:  # the page's tracker reads errors too
        problem.headers.update(cors)
        raise
    response.headers.update(cors)
    return result


async def _tp2(request: Request, response: Response, x_request_id: str | None) -> BatchAccepted:
    state: IngestState = request.state.ingest
    body, raw = await json_body_and_bytes(request, state.settings.ingest_max_batch_bytes)
    payloads = body.get("data")
    if not isinstance(payloads, list):
        raise Problem(400, "data", "payload_data needs a list of events in data")
    if len(payloads) > state.settings.ingest_max_batch_events:
        raise Problem(413, "data", f"more than {state.settings.ingest_max_batch_events} events")
    key = request.query_params.get("k") or _first(payloads, "aid")
    access = await write_key_access(state, key, "k") if _is_key(key) else None
    if access is None:
        raise Problem(401, "k", "missing or unknown write key: send ?k=<key> or aid=<key>")
    payloads = [_without_key(p, key) for p in payloads]
    # Browsers' trackers (platform web) leave the user agent and IP to the request;
    # server-side trackers' HTTP libraries would read as bots and their address is the
    # server's, so only theirs are used (an event's own ``ip`` parameter wins anyway).
    web = _first(payloads, "p") == "web"
    context = {**_agent(request), **_address(state, request)} if web else None
    received = Received(
        at=datetime.now(UTC),
        source=access.source,
        context=context,
        ip_policy=access.ip_policy,
        own_domains=state.settings.ingest_own_domains,
    )
    limit = state.settings.ingest_max_event_bytes
    ranges, originals = state.ip_ranges.lookup, ArrayElements(raw, "data")
    collected = collect(payloads, received, state.visitors, limit, to_segment, ranges, originals)
    return await accepted(state, response, collected, x_request_id, TP2)


@router.get(
    "/i",
    summary="Snowplow GET pixel: always a 1x1 GIF",
    response_class=Response,
    responses={200: {"content": {"image/gif": {}}, "description": "The 43-byte GIF."}},
    openapi_extra=SNOWPLOW_PIXEL_QUERY,
)
async def snowplow_pixel(request: Request) -> Response:
    """A pixel cannot retry or read errors: failures (write keys that cannot be checked, an
    unavailable broker) are counted in the metrics, and the GIF is sent all the same."""
    state: IngestState = request.state.ingest
    payload: dict[str, Any] = dict(request.query_params)
    key = payload.get("k") or payload.get("aid")
    try:
        access = await state.write_keys.access(key) if _is_key(key) else None
    except WriteKeysUnavailable:
        metrics.INGEST_EVENTS.labels("snowplow", KEY_LOOKUP_FAILED).inc()
        return _gif()
    if access is None:
        metrics.INGEST_EVENTS.labels("snowplow", "unauthenticated").inc()
    else:
        await _record_hit(state, request, access, _without_key(payload, key))
    return _gif()


def _gif() -> Response:
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


async def _record_hit(
    state: IngestState, request: Request, access: WriteKeyAccess, payload: dict[str, Any]
) -> None:
    received = Received(
        at=datetime.now(UTC),
        source=access.source,
        context={**_agent(request), **_address(state, request)},
        ip_policy=access.ip_policy,
        own_domains=state.settings.ingest_own_domains,
    )
    collected = collect(
        [payload], received, state.visitors, 4096, to_segment, ranges=state.ip_ranges.lookup
    )
    with contextlib.suppress(Problem):
        await publish_collected(state, collected, uuid.uuid4().hex, "/i")


def _is_key(key: object) -> TypeGuard[str]:
    return isinstance(key, str) and bool(key)


def _without_key(payload: Any, key: object) -> Any:
    """The payload without the credential: ``k``, and ``aid`` when it is the key (the
    tracker's app id set to it); the mapping reads neither."""
    if not isinstance(payload, dict):
        return payload  # rejected as it is: it holds no key field
    return {
        name: value
        for name, value in payload.items()
        if name != "k" and not (name == "aid" and value == key)
    }


def _address(state: IngestState, request: Request) -> dict[str, str]:
    return request_context(request, state.settings.ingest_trusted_proxies)


def _first(payloads: list[Any], field: str) -> Any:
    """A tracker has one app id and platform: the first event's stand for the request."""
    first = payloads[0] if payloads else None
    return first.get(field) if isinstance(first, dict) else None


def _agent(request: Request) -> dict[str, str]:
    """The request's user agent, for events whose payload has no ``ua`` (bot tagging)."""
    agent = request.headers.get("user-agent")
    return {"userAgent": agent} if agent else {}
