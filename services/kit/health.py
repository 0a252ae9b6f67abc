"""/healthz, /readyz and /metrics for every service.

The HTTP services mount ``health_router``; the consumers, which have no HTTP API, serve
the same router from a small app on their metrics port.
"""

from __future__ import annotations

import os
from collections.abc import Awaitable, Callable

from fastapi import APIRouter, FastAPI, Response
from fastapi.responses import JSONResponse
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, CollectorRegistry, generate_latest
from prometheus_client.multiprocess import MultiProcessCollector
from sqlalchemy.ext.asyncio import AsyncEngine

from services.kit import db, metrics, migrate
from services.kit.otel import NO_OPENTELEMETRY

ReadinessCheck = Callable[[], Awaitable[dict[str, str]]]
"""Returns a name -> problem map; empty means ready."""


async def database_problems(engine: AsyncEngine, *, migrations: bool = True) -> dict[str, str]:
    """Reachable, and (for services that read or write the schema) migrated to head."""
    try:
        if migrations and not await migrate.is_current(engine):
            return {"database": "migrations not at head"}
        await db.ping(engine)
    except Exception as error:  # noqa: BLE001 - any failure means not ready
        return {"database": type(error).__name__}
    return {}


def exposition() -> bytes:
    """The metrics page: this process's registry, or, when ``PROMETHEUS_MULTIPROC_DIR`` is
    set (several workers), every worker's values aggregated from that directory plus the
    build info (an ``Info``, which multi-process mode does not store)."""
    if not os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        return generate_latest(REGISTRY)
    registry = CollectorRegistry()
    MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    registry.register(metrics.BUILD_INFO)
    return generate_latest(registry)


def health_router(readiness: ReadinessCheck) -> APIRouter:
    router = APIRouter(tags=["operations"])

    @router.get("/healthz", summary="Liveness: the process answers")
    async def healthz() -> dict[str, str]:
        return {"status": "ok"}

    @router.get("/readyz", summary="Readiness: broker and database reachable")
    async def readyz() -> JSONResponse:
        problems = await readiness()
        status = 200 if not problems else 503
        body = {"status": "ready" if not problems else "not ready", "problems": problems}
        return JSONResponse(body, status_code=status)

    @router.get("/metrics", summary="Prometheus metrics", include_in_schema=False)
    async def metrics() -> Response:
        return Response(exposition(), media_type=CONTENT_TYPE_LATEST)

    return router


def operations_app(readiness: ReadinessCheck) -> FastAPI:
    app = FastAPI(
        title="abm-stream operations",
        openapi_url=None,
        docs_url=None,
        telemetry=NO_OPENTELEMETRY,
    )
    app.include_router(health_router(readiness))
    return app
