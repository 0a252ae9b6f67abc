"""What every HTTP service shares: latency by route template, serving until a signal."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from fastapi import FastAPI, Request, Response
from prometheus_client import Histogram
from starlette.routing import Match

from services.kit.runner import quiet_server, stop_on_signals

Middleware = Callable[[Request, Callable[[Request], Awaitable[Response]]], Awaitable[Response]]


def timed(histogram: Histogram, *, with_status: bool = False) -> Middleware:
    """Observe request latency labelled by route template (bounded), never by raw path."""

    async def middleware(
        request: Request, call_next: Callable[[Request], Awaitable[Response]]
    ) -> Response:
        started = time.perf_counter()
        status = 500  # an unhandled exception becomes a 500 outside this middleware
        try:
            response = await call_next(request)
            status = response.status_code
        finally:
            labels = [route_of(request)] + ([str(status)] if with_status else [])
            histogram.labels(*labels).observe(time.perf_counter() - started)
        return response

    return middleware


def route_of(request: Request) -> str:
    for route in request.app.routes:
        match, _ = route.matches(request.scope)
        if match == Match.FULL:
            return str(getattr(route, "path", "other"))
    return "unmatched"


def serve(app: FastAPI, host: str, port: int) -> None:
    """Serve until SIGTERM/SIGINT, then drain in-flight requests and run the lifespan exit."""
    asyncio.run(_serve(app, host, port))


async def _serve(app: FastAPI, host: str, port: int) -> None:
    server = quiet_server(app, host, port)
    stop = stop_on_signals()
    serving = asyncio.create_task(server.serve())
    await stop.wait()
    server.should_exit = True
    await serving
