"""Every /v1 route, each behind the scope it needs: read, write or admin."""

from __future__ import annotations

from fastapi import APIRouter

from services.api import accounts, admin, feed, funnel, ip_ranges, kpis, surges, writes
from services.api.auth import require
from services.api.errors import problem_responses
from services.api.webhooks import routes as webhooks

# Every route may answer these; each documents its own extra ones (404, 503, ...).
COMMON_ERRORS = problem_responses(400, 401, 403, 404, 422, 429, 503)

router = APIRouter(prefix="/v1", responses=COMMON_ERRORS)

reads = APIRouter(dependencies=[require("read")])  # type: ignore[list-item]
for module in (accounts, feed, funnel, kpis, surges):
    reads.include_router(module.router)
router.include_router(reads)
router.include_router(writes.router, dependencies=[require("write")])  # type: ignore[list-item]
router.include_router(webhooks.router, dependencies=[require("write")])  # type: ignore[list-item]
router.include_router(admin.router, dependencies=[require("admin")])  # type: ignore[list-item]
router.include_router(ip_ranges.router, dependencies=[require("admin")])  # type: ignore[list-item]
