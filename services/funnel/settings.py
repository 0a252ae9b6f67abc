"""Funnel service settings (``ABM_`` prefix)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field

from services.kit.settings import CommonSettings


class FunnelSettings(CommonSettings):
    funnel_metrics_host: str = "127.0.0.1"
    funnel_metrics_port: int = Field(default=8003, ge=1, le=65535)
    funnel_config_file: Path | None = Field(
        default=None, description="JSON funnel configuration (ICP, windows); default built in."
    )
    funnel_max_batch: int = Field(default=1000, ge=1)
    funnel_state_cache: int = Field(
        default=20_000,
        ge=0,
        description="Account states kept decoded in memory (LRU); about 20 KB each.",
    )
    funnel_timeline_days: float = Field(
        default=30.0, ge=0, description="Days of events kept per account for the timeline; 0: off."
    )
    funnel_tick_interval_s: float = Field(
        default=60.0,
        ge=0,
        description="Seconds between clock ticks, which expire windows without events; 0: off.",
    )
    funnel_tick_lateness_s: float = Field(
        default=300.0,
        ge=0,
        description="How far behind the wall clock ticks run: the lateness events may have.",
    )
