"""HTTP routes of our tag: the script at ``/t.js`` and its beacon endpoint ``/v1/t``."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Header, Request
from fastapi.responses import Response

from services.ingest.bodies import json_body
from services.ingest.client_address import request_context
from services.ingest.errors import Problem
from services.ingest.openapi_docs import BEACON_BODY
from services.ingest.routes import (
    PROBLEMS,
    BatchAccepted,
    accepted,
    collect_single,
)
from services.ingest.state import IngestState
from services.ingest.tag import TAG_ETAG, TAG_HEADERS, TAG_JS, cors_headers

router = APIRouter()


@router.get("/t.js", summary="The JavaScript tag", response_class=Response)
async def tag_script(if_none_match: Annotated[str | None, Header()] = None) -> Response:
    if if_none_match == TAG_ETAG:
        return Response(status_code=304, headers=TAG_HEADERS)
    return Response(TAG_JS, media_type="application/javascript", headers=TAG_HEADERS)


@router.options("/v1/t", summary="CORS preflight of the tag's beacon", status_code=204)
async def beacon_preflight(origin: Annotated[str | None, Header()] = None) -> Response:
    return Response(status_code=204, headers=cors_headers(origin))


@router.post(
    "/v1/t",
    response_model=BatchAccepted,
    summary="The tag's beacon: one Segment page message with its writeKey",
    responses=PROBLEMS,
    openapi_extra=BEACON_BODY,
)
async def post_beacon(
    request: Request,
    response: Response,
    origin: Annotated[str | None, Header()] = None,
) -> BatchAccepted:
    state: IngestState = request.state.ingest
    cors = cors_headers(origin)
    try:
        body = await json_body(request, state.settings.ingest_max_event_bytes)
        _with_user_agent(body, request.headers.get("user-agent"))
        _with_address(body, request_context(request, state.settings.ingest_trusted_proxies))
        collected = await collect_single(state, None, body, "page")
        result = await accepted(state, response, collected, None, "/v1/t")
    except Problem as problem:
        problem.headers.update(cors)
        raise
    response.headers.update(cors)
    return result


def _with_address(body: dict[str, Any], address: dict[str, str]) -> None:
    """A beacon's IP is its request's: a page's script cannot know its public address."""
    context = body.get("context")
    if address and isinstance(context, dict | None):
        body["context"] = {**(context or {}), **address}


def _with_user_agent(body: dict[str, Any], user_agent: str | None) -> None:
    """A beacon's user agent is its request's (bots are tagged from it)."""
    context = body.get("context")
    if user_agent and isinstance(context, dict | None):
        body["context"] = {"userAgent": user_agent, **(context or {})}
