"""FastAPI's native OpenTelemetry, switched off in every app we serve.

We observe with Prometheus (``http.TimingMiddleware``) and JSON logs. Left on, FastAPI
checks on every request whether tracer and meter providers are configured, which cost
about a tenth of a pixel hit's CPU for nothing.
"""

from __future__ import annotations

from fastapi.telemetry import TelemetryConfig

NO_OPENTELEMETRY: TelemetryConfig = {
    "tracing": False,
    "metrics": False,
    "logs": False,
    "operation_spans": False,
}
