"""The baseline for the API benchmark: an empty FastAPI route under the same server
settings as the API (uvicorn, one process, no access log, /readyz for the harness)."""

from __future__ import annotations

import os

from fastapi import FastAPI

from services.kit.http import serve
from services.kit.otel import NO_OPENTELEMETRY

app = FastAPI(telemetry=NO_OPENTELEMETRY)  # as configured in our services


@app.get("/empty/{domain}")
async def empty(domain: str) -> dict[str, str]:
    return {}


@app.get("/readyz")
async def ready() -> dict[str, str]:
    return {"status": "ready"}


if __name__ == "__main__":
    serve(app, "127.0.0.1", int(os.environ["ABM_EMPTY_PORT"]))
