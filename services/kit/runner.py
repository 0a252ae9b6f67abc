"""Process entry points: signals, the consumer service runtime, HTTP serving."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import Callable, Coroutine, Generator, Sequence
from dataclasses import replace
from typing import Any

import uvicorn
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.kit import db
from services.kit.consumer import BatchHandler, ConsumerShell, ShellOptions
from services.kit.gc_tuning import tune_for_throughput
from services.kit.health import ReadinessCheck, database_problems, operations_app
from services.kit.metrics import publish_build_info
from services.kit.settings import CommonSettings

log = logging.getLogger(__name__)

Sidecar = Callable[[async_sessionmaker[AsyncSession], asyncio.Event], Coroutine[Any, Any, None]]
"""Periodic work next to a consumer (e.g. gauges from the database); returns once the
event is set."""


def stop_on_signals() -> asyncio.Event:
    """An event set by SIGTERM or SIGINT, so that work can finish its batch and exit."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    return stop


class EmbeddedServer(uvicorn.Server):
    """A uvicorn server that leaves signals to our own handler (see ``stop_on_signals``)."""

    @contextlib.contextmanager
    def capture_signals(self) -> Generator[None, None, None]:
        yield


def quiet_server(app: FastAPI, host: str, port: int) -> uvicorn.Server:
    # proxy_headers off: which proxies to believe is the service's own setting (ingest's
    # trusted proxies), not uvicorn's default of trusting X-Forwarded-For from 127.0.0.1.
    config = uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        access_log=False,
        lifespan="on",
        proxy_headers=False,
    )
    return EmbeddedServer(config)


async def run_consumer_service(
    *,
    service: str,
    settings: CommonSettings,
    group_id: str,
    topic_names: Sequence[str],
    handler: BatchHandler,
    metrics_host: str,
    metrics_port: int,
    options: ShellOptions | None = None,
    sidecars: Sequence[Sidecar] = (),
) -> None:
    """Run one consumer with its operations endpoints (and sidecars) until SIGTERM/SIGINT."""
    publish_build_info(service)
    engine = db.create_engine(url=settings.database_url, pool_size=settings.database_pool_size)
    sessions: async_sessionmaker[AsyncSession] = db.create_sessionmaker(engine)
    options = options or ShellOptions()
    if db.is_sqlite(settings.database_url):  # one writer at a time: nothing to overlap
        options = replace(options, pipelined=False)
    shell = ConsumerShell(
        settings=settings,
        group_id=group_id,
        topic_names=topic_names,
        handler=handler,
        sessionmaker=sessions,
        options=options,
    )

    readiness = _consumer_readiness(engine, shell)
    tune_for_throughput()
    server = quiet_server(operations_app(readiness), metrics_host, metrics_port)
    stop = stop_on_signals()
    serving = asyncio.create_task(server.serve())
    running = [asyncio.create_task(sidecar(sessions, stop)) for sidecar in sidecars]
    log.info("%s consuming %s as %s", service, ", ".join(topic_names), group_id)
    try:
        await shell.run(stop)
    finally:
        stop.set()
        server.should_exit = True
        await asyncio.gather(serving, *running, return_exceptions=True)
        await engine.dispose()
        log.info("%s stopped", service)


def _consumer_readiness(engine: AsyncEngine, shell: ConsumerShell) -> ReadinessCheck:
    async def readiness() -> dict[str, str]:
        problems = await database_problems(engine)
        if not shell.status.started:
            problems["broker"] = "consumer not connected"
        return problems

    return readiness
