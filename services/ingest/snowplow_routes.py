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

from services.ingest.collect import collect
from services.ingest.pixel import GIF, NO_CACHE
from services.ingest.routes import (
    BatchAccepted,
    Problem,
    accepted,
    json_body,
    publish_collected,
)
from services.ingest.segment import Received
from services.ingest.snowplow import to_segment
from services.ingest.state import IngestState
from services.kit import metrics

router = APIRouter()


@router.post(
    "/com.snowplowanalytics.snowplow/tp2",
    response_model=BatchAccepted,
    summary="Snowplow tracker protocol 2 (payload_data)",
    responses={400: {}, 401: {}, 413: {}, 503: {}},
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
    source = await _source(state, request.query_params.get("k") or _first(payloads, "aid"))
    if source is None:
        raise Problem(401, "k", "missing or unknown write key: send ?k=<key> or aid=<key>")
    # Browsers' trackers (platform web) leave the user agent to the request's header;
    # server-side trackers' HTTP libraries would read as bots, so only theirs is used.
    agent = _agent(request) if _first(payloads, "p") == "web" else None
    received = Received(at=datetime.now(UTC), source=source, context=agent)
    limit = state.settings.ingest_max_event_bytes
    collected = collect(payloads, received, state.visitors, limit, to_segment)
    return await accepted(state, response, collected, x_request_id)


@router.get("/i", summary="Snowplow GET pixel: always a 1x1 GIF", response_class=Response)
async def snowplow_pixel(request: Request) -> Response:
    state: IngestState = request.state.ingest
    payload = dict(request.query_params)
    source = await _source(state, payload.get("k") or payload.get("aid"))
    if source is None:
        metrics.INGEST_EVENTS.labels("snowplow", "unauthenticated").inc()
    else:
        received = Received(at=datetime.now(UTC), source=source, context=_agent(request))
        collected = collect([payload], received, state.visitors, 4096, to_segment)
        # A pixel cannot retry or read errors; a failure is counted in the metrics.
        with contextlib.suppress(Problem):
            await publish_collected(state, collected, uuid.uuid4().hex)
    return Response(GIF, media_type="image/gif", headers=NO_CACHE)


async def _source(state: IngestState, key: Any) -> str | None:
    if not isinstance(key, str) or not key:
        return None
    return await state.write_keys.source(key)


def _first(payloads: list[Any], field: str) -> Any:
    """A tracker has one app id and platform: the first event's stand for the request."""
    first = payloads[0] if payloads else None
    return first.get(field) if isinstance(first, dict) else None


def _agent(request: Request) -> dict[str, str]:
    """The request's user agent, for events whose payload has no ``ua`` (bot tagging)."""
    agent = request.headers.get("user-agent")
    return {"userAgent": agent} if agent else {}
