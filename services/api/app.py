"""The API gateway application and its entry point."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker
from starlette.exceptions import HTTPException

from services.api.auth import RateLimitHeaders, Tokens
from services.api.change_tail import ChangeTail
from services.api.detail_cache import DetailCache
from services.api.detail_path import AccountDetailFastPath
from services.api.errors import (
    DATABASE_UNAVAILABLE,
    ApiProblem,
    handle_http,
    handle_problem,
    handle_unexpected,
    handle_validation,
)
from services.api.etag import ConditionalGetMiddleware
from services.api.producer import LazyProducer
from services.api.ratelimit import RateLimiter
from services.api.routes import router
from services.api.settings import ApiSettings
from services.api.webhooks.dispatcher import Dispatcher
from services.kit import db, metrics
from services.kit.health import database_problems, health_router
from services.kit.http import TimingMiddleware, serve
from services.kit.logging import configure_logging
from services.kit.notify import AccountChangeListener, asyncpg_dsn
from services.kit.otel import NO_OPENTELEMETRY


@dataclass(frozen=True, slots=True)
class ApiState:
    settings: ApiSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    tokens: Tokens
    limiter: RateLimiter
    producer: LazyProducer
    details: DetailCache | None
    """Rendered account details; None where changes cannot be heard (SQLite) or disabled."""
    reads: AsyncEngine
    """``engine`` without transactions, for the reads: see ``db.reads_of``."""
    readers: async_sessionmaker[AsyncSession]
    """Sessions on ``reads``: for routes that only read (``sessions`` for the writes)."""
    changes: ChangeTail
    """The change log's newest changes, for the streams."""


def create_app(settings: ApiSettings) -> FastAPI:
    holder: dict[str, ApiState] = {}

    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[dict[str, ApiState]]:
        engine = db.create_engine(url=settings.database_url, pool_size=settings.database_pool_size)
        sessions = db.create_sessionmaker(engine)
        limiter = RateLimiter(settings.api_rate_limit_per_minute, settings.api_rate_limit_burst)
        tokens = Tokens(sessions, settings.api_token_cache_s)
        producer = LazyProducer(settings)
        details = _detail_cache(settings)
        reads = db.reads_of(engine)
        readers = db.create_sessionmaker(reads)
        tail = ChangeTail(readers, settings.api_stream_poll_s, settings.api_stream_buffer)
        for reader in ("tail", "stream"):  # both series exist before the first read
            metrics.API_CHANGE_LOG_READS.labels(reader)
        state = ApiState(
            settings, engine, sessions, tokens, limiter, producer, details, reads, readers, tail
        )  # fmt: skip
        holder["state"] = state
        stop = asyncio.Event()
        tailing = asyncio.create_task(tail.run(stop))
        # Commits are heard on PostgreSQL only (NOTIFY): there they evict cached details
        # and wake the streams; elsewhere the tail reads the log every period.
        listening = (
            None
            if db.is_sqlite(settings.database_url)
            else asyncio.create_task(
                AccountChangeListener(
                    asyncpg_dsn(settings.database_url),
                    [tail] if details is None else [tail, details],
                    check_every_s=settings.api_detail_listener_check_s,
                ).run(stop)
            )
        )
        dispatching = (
            asyncio.create_task(Dispatcher(settings, sessions, tail.ticket).run(stop))
            if settings.api_webhooks_enabled
            else None
        )
        try:
            yield {"api": state}
        finally:
            stop.set()
            if dispatching is not None:
                await dispatching
            if listening is not None:
                await listening
            await tailing
            await producer.close()
            await engine.dispose()

    async def readiness() -> dict[str, str]:
        state = holder.get("state")
        if state is None:
            return {"service": "starting"}
        return await database_problems(state.engine)

    app = FastAPI(
        title="abm-stream API",
        version="1",
        description="Account state for sales tools: stage, tier, fit, surges, funnel.",
        lifespan=lifespan,
        telemetry=NO_OPENTELEMETRY,
    )
    app.include_router(router)
    app.include_router(health_router(readiness))
    app.add_exception_handler(ApiProblem, handle_problem)
    app.add_exception_handler(RequestValidationError, handle_validation)
    app.add_exception_handler(HTTPException, handle_http)  # no such path (404), method (405)
    for database_error in DATABASE_UNAVAILABLE:  # 503 while the database is out of reach
        app.add_exception_handler(database_error, handle_unexpected)
    app.add_exception_handler(Exception, handle_unexpected)  # 500, in the same shape
    app.add_middleware(RateLimitHeaders)  # innermost: sees what routes and handlers answer
    app.add_middleware(ConditionalGetMiddleware)
    app.add_middleware(AccountDetailFastPath)
    app.add_middleware(TimingMiddleware, histogram=metrics.API_REQUEST_SECONDS, with_status=True)
    return app


def _detail_cache(settings: ApiSettings) -> DetailCache | None:
    """On PostgreSQL only: SQLite cannot notify, and a cache nobody invalidates goes stale."""
    if settings.api_detail_cache_mb <= 0 or db.is_sqlite(settings.database_url):
        return None
    return DetailCache(int(settings.api_detail_cache_mb * 2**20))


def main(settings: ApiSettings | None = None) -> None:
    settings = settings or ApiSettings()
    configure_logging(settings.log_level, settings.log_json)
    metrics.publish_build_info("api")
    serve(create_app(settings), settings.api_host, settings.api_port)
