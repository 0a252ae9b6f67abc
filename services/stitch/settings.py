"""Stitch service settings (``ABM_`` prefix)."""

from __future__ import annotations

from pydantic import Field

from services.kit.settings import CommonSettings


class StitchSettings(CommonSettings):
    stitch_metrics_host: str = "127.0.0.1"
    stitch_metrics_port: int = Field(default=8004, ge=1, le=65535)
    stitch_max_batch: int = Field(default=1000, ge=1)
    stitch_max_pending: int = Field(
        default=200, ge=0, description="Anonymous events kept per unidentified visitor."
    )
    stitch_pending_days: float = Field(
        default=90.0,
        gt=0,
        description="Pending events older than this (event time, behind the visitor's "
        "newest event) are dropped: never attributed.",
    )
