"""Intent service settings (``ABM_`` prefix)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.kit.settings import CommonSettings


class IntentSettings(CommonSettings):
    intent_metrics_host: str = "127.0.0.1"
    intent_metrics_port: int = Field(default=8002, ge=1, le=65535)
    intent_config_file: Path | None = Field(
        default=None, description="JSON intent configuration (topics, thresholds)."
    )
    intent_max_batch: int = Field(default=1000, ge=1)
