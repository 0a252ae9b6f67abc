"""What every HTTP service shares: latency by route template, serving until a signal."""

from __future__ import annotations

import asyncio
import time

from fastapi import FastAPI
from prometheus_client import Histogram
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.kit import metrics
from services.kit.gc_tuning import tune_for_throughput
from services.kit.runner import quiet_server, stop_on_signals


class TimingMiddleware:
    """Observe request latency labelled by route template (bounded), never by raw path.

    Plain ASGI rather than ``BaseHTTPMiddleware``, whose task group and memory streams
    cost more per request than a cached API read.
    """

    def __init__(self, app: ASGIApp, histogram: Histogram, with_status: bool = False) -> None:
        self.app = app
        self.histogram = histogram
        self.with_status = with_status

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500  # an unhandled exception becomes a 500 outside this middleware

        async def record_status(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, record_status)
        finally:
            route = str(getattr(scope.get("route"), "path", "unmatched"))
            labels = [route, str(status)] if self.with_status else [route]
            metrics.labelled(self.histogram, *labels).observe(time.perf_counter() - started)


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT, then drain in-flight requests and run the lifespan exit."""
    tune_for_throughput()
    asyncio.run(_serve(app, host, port))


async def _serve(app: FastAPI, host: str, port: int) -> None:
    server = quiet_server(app, host, port)
    stop = stop_on_signals()
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving
