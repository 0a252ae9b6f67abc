"""Company IP ranges administration (admin scope): upload, summarize, delete.

Ingest names a visitor's account from these ranges when nothing stronger does (provenance
``ip_range``); it notices a change within ``ABM_INGEST_IP_RANGES_REFRESH_S``. An upload is
CSV text (``cidr,domain[,confidence]``, ``Content-Type: text/csv``) or JSON (a list of
``{cidr, domain, confidence?}`` or ``{"ranges": [...]}``); bad rows are reported with their
line (or item) number and reason, the good ones are loaded.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Query, Request
from pydantic import BaseModel, Field

from services.api.errors import ApiProblem, BadRequest
from services.kit import ip_ranges

router = APIRouter(prefix="/admin/ip-ranges")

MAX_UPLOAD_BYTES = 128 * 1024 * 1024  # about three million CSV rows

UPLOAD_BODY: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {
            "text/csv": {
                "schema": {"type": "string"},
                "example": "cidr,domain,confidence\n203.0.113.0/24,acme.com,0.8\n",
            },
            "application/json": {
                "schema": {
                    "type": "array",
                    "items": {
                        "type": "object",
                        "required": ["cidr", "domain"],
                        "properties": {
                            "cidr": {"type": "string", "example": "2001:db8:ac::/48"},
                            "domain": {"type": "string", "example": "acme.com"},
                            "confidence": {"type": "number", "minimum": 0, "maximum": 1},
                        },
                    },
                }
            },
        },
    }
}


class PayloadTooLarge(ApiProblem):
    status, title = 413, "Payload too large"


class RowProblem(BaseModel):
    line: int = Field(description="CSV line, or the JSON item's 1-based position")
    reason: str


class RangesSummary(BaseModel):
    ranges: int
    domains: int
    updated_at: datetime | None = None


class RangesLoaded(RangesSummary):
    loaded: int = Field(description="Rows of this upload written")
    rejected: int = Field(description="Rows of this upload skipped")
    errors: list[RowProblem] = Field(description="The first 1,000 skipped rows, with reasons")


class RangesDeleted(BaseModel):
    deleted: int


@router.post("", response_model=RangesLoaded, openapi_extra=UPLOAD_BODY)
async def upload_ranges(
    request: Request,
    mode: Annotated[
        Literal["merge", "replace"],
        Query(description="merge: add and update; replace: also remove every other range"),
    ] = "merge",
    label: Annotated[str | None, Query(max_length=256, pattern=r"^[^\x00]*$")] = None,
) -> RangesLoaded:
    parsed = _parse(await _bounded_body(request), request.headers.get("content-type", ""))
    if mode == "replace" and not parsed.rows:
        raise BadRequest("no valid row: replacing would delete every range", field="body")
    async with request.state.api.sessions() as session, session.begin():
        now = datetime.now(UTC)
        await ip_ranges.store_ranges(session, parsed.rows, mode, label or "api", now)
        summary = await ip_ranges.range_summary(session)
    return RangesLoaded(
        ranges=summary.ranges,
        domains=summary.domains,
        updated_at=summary.updated_at,
        loaded=len(parsed.rows),
        rejected=parsed.bad,
        errors=[RowProblem(line=e.line, reason=e.reason) for e in parsed.errors],
    )


@router.get("", response_model=RangesSummary)
async def summarize_ranges(request: Request) -> RangesSummary:
    async with request.state.api.sessions() as session:
        summary = await ip_ranges.range_summary(session)
    return RangesSummary(
        ranges=summary.ranges, domains=summary.domains, updated_at=summary.updated_at
    )


@router.delete("", response_model=RangesDeleted)
async def delete_ranges(
    request: Request,
    cidr: Annotated[
        list[str] | None, Query(max_length=64, description="Ranges to delete; none: every one")
    ] = None,
) -> RangesDeleted:
    async with request.state.api.sessions() as session, session.begin():
        deleted = await ip_ranges.delete_ranges(session, cidr)
    return RangesDeleted(deleted=deleted)


def _parse(raw: bytes, content_type: str) -> ip_ranges.ParsedRanges:
    if "json" in content_type.lower():
        try:
            document = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise BadRequest("not valid JSON", field="body") from None
        items = document.get("ranges") if isinstance(document, dict) else document
        if not isinstance(items, list):
            raise BadRequest("expected a list of {cidr, domain, confidence?}", field="body")
        return ip_ranges.parse_items(items)
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError:
        raise BadRequest("CSV must be UTF-8 text", field="body") from None
    return ip_ranges.parse_csv(ip_ranges.iter_lines(text))


async def _bounded_body(request: Request) -> bytes:
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > MAX_UPLOAD_BYTES:
            raise PayloadTooLarge(f"larger than {MAX_UPLOAD_BYTES // 1024 // 1024} MB")
        chunks.append(chunk)
    return b"".join(chunks)
