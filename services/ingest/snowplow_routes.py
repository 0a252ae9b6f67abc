"""HTTP routes of the Snowplow tracker protocol: ``POST .../tp2`` and the GET pixel ``/i``.

Snowplow trackers send no write key header, so the key travels as the query parameter
``k`` (both routes) or as the tracker's app id ``aid``: configure the tracker with
``app_id=<write key>`` and the app id names the source.
"""

from __future__ import annotations

import contextlib
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from services.ingest.client_address import request_context
from services.ingest.collect import collect
from services.ingest.openapi_docs import SNOWPLOW_TP2_BODY
from services.ingest.pixel import GIF, NO_CACHE
from services.ingest.routes import (
    PROBLEMS,
    BatchAccepted,
    Problem,
    accepted,
    json_body,
    publish_collected,
)
from services.ingest.segment import Received
from services.ingest.snowplow import to_segment
from services.ingest.state import IngestState
from services.ingest.write_keys import WriteKeyAccess
from services.kit import metrics

router = APIRouter()
TP2 = "/com.snowplowanalytics.snowplow/tp2"


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
    x_request_id: Annotated[str | None, Header(max_length=128)] = None,
) -> BatchAccepted:
    state: IngestState = request.state.ingest
    body = await json_body(request, state.settings.ingest_max_batch_bytes)
    payloads = body.get("data")
    if not isinstance(payloads, list):
        raise Problem(400, "data", "payload_data needs a list of events in data")
    if len(payloads) > state.settings.ingest_max_batch_events:
        raise Problem(413, "data", f"more than {state.settings.ingest_max_batch_events} events")
    access = await _access(state, request.query_params.get("k") or _first(payloads, "aid"))
    if access is None:
        raise Problem(401, "k", "missing or unknown write key: send ?k=<key> or aid=<key>")
    # Browsers' trackers (platform web) leave the user agent and IP to the request;
    # server-side trackers' HTTP libraries would read as bots and their address is the
    # server's, so only theirs are used (an event's own ``ip`` parameter wins anyway).
    web = _first(payloads, "p") == "web"
    context = {**_agent(request), **_address(state, request)} if web else None
    received = Received(
        at=datetime.now(UTC), source=access.source, context=context, ip_policy=access.ip_policy
    )
    limit = state.settings.ingest_max_event_bytes
    collected = collect(
        payloads, received, state.visitors, limit, to_segment, ranges=state.ip_ranges.lookup
    )
    return await accepted(state, response, collected, x_request_id, TP2)


@router.get("/i", summary="Snowplow GET pixel: always a 1x1 GIF", response_class=Response)
async def snowplow_pixel(request: Request) -> Response:
    state: IngestState = request.state.ingest
    payload = dict(request.query_params)
    access = await _access(state, payload.get("k") or payload.get("aid"))
    if access is None:
        metrics.INGEST_EVENTS.labels("snowplow", "unauthenticated").inc()
    else:
        received = Received(
            at=datetime.now(UTC),
            source=access.source,
            context={**_agent(request), **_address(state, request)},
            ip_policy=access.ip_policy,
        )
        collected = collect(
            [payload], received, state.visitors, 4096, to_segment, ranges=state.ip_ranges.lookup
        )
        # A pixel cannot retry or read errors; a failure is counted in the metrics.
        with contextlib.suppress(Problem):
            await publish_collected(state, collected, uuid.uuid4().hex, "/i")
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


async def _access(state: IngestState, key: Any) -> WriteKeyAccess | None:
    if not isinstance(key, str) or not key:
        return None
    return await state.write_keys.access(key)


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
