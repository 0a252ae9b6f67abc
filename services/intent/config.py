"""Tuning of the intent service: which events feed which topics, and the surge detector.

Durations are given in days and converted to buckets, so that changing ``bucket_minutes``
keeps the detector's memory the same length in time. Loaded from JSON with
``load_intent_config``; every field has a default, unknown fields are rejected (typos).
"""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Annotated

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    field_validator,
    model_validator,
)

Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]

MINUTES_PER_DAY = 1440

DEFAULT_URL_TOPICS: dict[str, str] = {
    "/pricing": "pricing",
    "/demo": "demo",
    "/integrations": "integrations",
    "/vs/": "competitors",
    "/compare": "competitors",
    "/security": "security",
}


class IntentConfig(BaseModel):
    """Immutable configuration of topic mapping and surge detection."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    detector_version: str = Field(default="ewma-1", min_length=1, max_length=256)
    surge_threshold: float = Field(default=60, gt=0, le=100)
    end_threshold: float = Field(default=40, ge=0, le=100, description="Hysteresis.")
    bucket_minutes: int = Field(default=60, gt=0)
    half_life_days: float = Field(default=7, gt=0, description="Memory of the baseline.")
    warmup_days: float = Field(
        default=3, ge=0, description="History a series needs before it may surge."
    )
    min_observed: float = Field(
        default=5, gt=0, description="Least weighted count in a bucket for a surge."
    )
    variance_prior: float = Field(
        default=1, gt=0, description="Added to the variance floor: no history, no surge."
    )
    z_scale: float = Field(default=8, gt=0, description="score = 100 * (1 - exp(-z / z_scale))")
    max_trigger_ids: int = Field(default=3, ge=1, le=5)
    max_event_weight: float = Field(
        default=100, gt=0, description="Clamp per event, so one garbage count cannot poison."
    )
    intent_score_scale: float = Field(
        default=10, gt=0, description="Weight of a third-party signal with score 100."
    )
    url_topics: dict[str, Topic] = Field(
        default_factory=lambda: dict(DEFAULT_URL_TOPICS),
        description="Case-insensitive substring of the URL path -> topic.",
    )
    web_topic: Topic = "web"

    @field_validator("url_topics")
    @classmethod
    def _normalize_url_topics(cls, value: dict[str, str]) -> dict[str, str]:
        if any(not pattern for pattern in value):
            raise ValueError("url_topics: a pattern must not be empty")
        return {pattern.lower(): topic.lower() for pattern, topic in value.items()}

    @field_validator("web_topic")
    @classmethod
    def _lower_web_topic(cls, value: str) -> str:
        return value.lower()

    @model_validator(mode="after")
    def _hysteresis(self) -> IntentConfig:
        if self.end_threshold > self.surge_threshold:
            raise ValueError("end_threshold must not exceed surge_threshold")
        return self

    @property
    def half_life_buckets(self) -> float:
        return self.half_life_days * MINUTES_PER_DAY / self.bucket_minutes

    @property
    def decay(self) -> float:
        """Weight kept by the baseline per bucket: ``0.5 ** (1 / half_life_buckets)``."""
        return float(0.5 ** (1 / self.half_life_buckets))

    @property
    def warmup_buckets(self) -> int:
        return math.ceil(self.warmup_days * MINUTES_PER_DAY / self.bucket_minutes)


def load_intent_config(path: Path | None) -> IntentConfig:
    """The defaults, or the JSON object in ``path`` (fields not given keep their default)."""
    if path is None:
        return IntentConfig()
    return IntentConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
