"""Every /v1 route, each behind the scope it needs: read, write or admin; then every query
parameter must be one the route declares (a misspelt filter is a 400, not ignored)."""

from __future__ import annotations

from fastapi import APIRouter, Depends

from services.api import accounts, admin, feed, funnel, ip_ranges, kpis, surges, writes
from services.api.auth import require
from services.api.edge import reject_unknown_query
from services.api.errors import problem_responses
from services.api.webhooks import routes as webhooks

# Every route may answer these; each documents its own extra ones (404, 503, ...).
COMMON_ERRORS = problem_responses(400, 401, 403, 404, 422, 429, 503)


def checks(scope: str) -> list[object]:
    """Authentication first: an unknown caller learns nothing of the parameters."""
    return [require(scope), Depends(reject_unknown_query)]


router = APIRouter(prefix="/v1", responses=COMMON_ERRORS)

reads = APIRouter(dependencies=checks("read"))  # type: ignore[arg-type]
for module in (accounts, feed, funnel, kpis, surges):
    reads.include_router(module.router)
router.include_router(reads)
router.include_router(writes.router, dependencies=checks("write"))  # type: ignore[arg-type]
router.include_router(webhooks.router, dependencies=checks("write"))  # type: ignore[arg-type]
router.include_router(admin.router, dependencies=checks("admin"))  # type: ignore[arg-type]
router.include_router(ip_ranges.router, dependencies=checks("admin"))  # type: ignore[arg-type]
