"""The ingest FastAPI application and its entry point."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI, Request, Response

from services.ingest.collect import start_resolution_series
from services.ingest.company_ranges import CompanyRanges
from services.ingest.company_ranges import stop as stop_refreshing
from services.ingest.errors import Problem, problem_response
from services.ingest.identity import VisitorAccounts
from services.ingest.observe import start_series
from services.ingest.pixel_path import PixelFastPath
from services.ingest.publishing import Publisher
from services.ingest.routes import router
from services.ingest.settings import IngestSettings
from services.ingest.snowplow_routes import router as snowplow_router
from services.ingest.state import IngestState
from services.ingest.tag_routes import router as tag_router
from services.ingest.write_keys import WriteKeys
from services.kit import db, kafka, metrics
from services.kit.health import database_problems, health_router
from services.kit.http import TimingMiddleware, serve
from services.kit.logging import configure_logging
from services.kit.otel import NO_OPENTELEMETRY


def create_app(settings: IngestSettings) -> FastAPI:
    holder: dict[str, IngestState] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, IngestState]]:
        engine = db.create_engine(url=settings.database_url, pool_size=settings.database_pool_size)
        producer = kafka.create_producer(settings)
        await producer.start()
        sessions = db.create_sessionmaker(engine)
        ip_ranges = CompanyRanges(sessions, settings.ingest_ip_ranges_refresh_s)
        await ip_ranges.refresh_quietly()  # an unreachable database: retried in the background
        state = IngestState(
            settings=settings,
            engine=engine,
            publisher=Publisher(
                producer, settings.ingest_ack_timeout_s, settings.ingest_max_in_flight
            ),
            write_keys=WriteKeys(
                sessions, settings.ingest_write_key_cache_s, settings.ingest_write_key_timeout_s
            ),
            visitors=VisitorAccounts(),
            ip_ranges=ip_ranges,
        )
        holder["state"] = state
        refreshing = ip_ranges.start()
        try:
            yield {"ingest": state}
        finally:
            await stop_refreshing(refreshing)
            await kafka.stop_client(producer, "ingest producer")
            await engine.dispose()

    async def readiness() -> dict[str, str]:
        state = holder.get("state")
        if state is None:
            return {"service": "starting"}
        problems: dict[str, str] = {}
        try:
            await state.publisher.ping()
        except Exception as error:  # noqa: BLE001 - unreachable for whatever reason
            problems["broker"] = type(error).__name__ or "unreachable"
        # Ingest only reads write keys: a reachable database is enough.
        return problems | await database_problems(state.engine, migrations=False)

    app = FastAPI(
        title="abm-stream ingest",
        version="1",
        description="Collection: Segment HTTP API, Snowplow tracker protocol, pixel and tag.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    app.include_router(tag_router)  # before /v1/{call}, which would shadow /v1/t
    app.include_router(router)
    app.include_router(snowplow_router)
    app.include_router(health_router(readiness))
    app.add_exception_handler(Problem, _problem_handler)  # type: ignore[arg-type]
    app.add_middleware(PixelFastPath)  # inside the timing, like any route
    app.add_middleware(TimingMiddleware, histogram=metrics.INGEST_REQUEST_SECONDS, with_status=True)
    return app


async def _problem_handler(_request: Request, problem: Problem) -> Response:
    return problem_response(problem)


def main(settings: IngestSettings | None = None) -> None:
    settings = settings or IngestSettings()
    configure_logging(settings.log_level, settings.log_json)
    metrics.publish_build_info("ingest")
    start_series()
    start_resolution_series()
    serve(create_app(settings), settings.ingest_host, settings.ingest_port)
