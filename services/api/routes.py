"""Every /v1 read route, behind a read-scoped token."""

from __future__ import annotations

from fastapi import APIRouter

from services.api import accounts, feed, funnel, surges
from services.api.auth import require

router = APIRouter(prefix="/v1", dependencies=[require("read")])  # type: ignore[list-item]
for module in (accounts, feed, funnel, surges):
    router.include_router(module.router)
