"""Checks every route applies at the edge: no unknown query parameters, instants in UTC range."""

from __future__ import annotations

from datetime import UTC, datetime

from fastapi import Request
from fastapi.dependencies.models import Dependant

from services.api.errors import BadRequest


async def reject_unknown_query(request: Request) -> None:
    """A misspelt filter (``tierr=1``) must not quietly answer the unfiltered listing."""
    if not request.query_params:
        return
    dependant: Dependant | None = getattr(request.scope.get("route"), "dependant", None)
    if dependant is None:
        return
    known = _query_names(dependant)  # a few dependants: cheaper to walk than to cache
    for name in request.query_params:
        if name not in known:
            raise BadRequest(f"unknown query parameter {name[:64]!r}", field=name[:64])


def _query_names(dependant: Dependant) -> frozenset[str]:
    """The query parameters of a route and of every dependency it resolves, by their alias."""
    names: set[str] = set()
    pending = [dependant]
    while pending:
        current = pending.pop()
        names.update(param.alias for param in current.query_params)
        pending.extend(current.dependencies)
    return frozenset(names)


def to_utc(moment: datetime, field: str) -> datetime:
    """``moment`` in UTC: it must name its zone and lie where UTC can express it (year 1 at
    +01:00 is before the earliest UTC datetime Python or the database holds)."""
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise BadRequest("needs a time zone, e.g. 2026-01-01T00:00:00Z", field=field)
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        raise BadRequest("outside the years 1 to 9999 in UTC", field=field) from None
