"""Tuning of the intent service: which events feed which topics, and the surge detector.

Durations are given in hours or days and converted to buckets, so that changing ``bucket_minutes``
keeps the detector's memory the same length in time. Loaded from JSON with
``load_intent_config``; every field has a default, unknown fields are rejected (typos).
"""

from __future__ import annotations

import json
import math
from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import Annotated

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator
from pydantic.dataclasses import dataclass

from schemas.topics import EVENTS
from services.intent import model
from services.kit.records import Frozen

Topic = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=256)]

MINUTES_PER_DAY = 1440
FIRST_PARTY_SOURCE = "web"

DEFAULT_URL_TOPICS: dict[str, str] = {
    "/pricing": "pricing",
    "/demo": "demo",
    "/integrations": "integrations",
    "/vs/": "competitors",
    "/compare": "competitors",
    "/security": "security",
}


# A record, not a model: the detector reads it several times per event (services.kit.records).
@dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class IntentConfig(Frozen):
    """Immutable configuration of topic mapping and surge detection."""

    detector_version: str = Field(default="nb-seasonal-3", min_length=1, max_length=256)
    surge_threshold: float = Field(default=60, gt=0, le=100)
    end_threshold: float = Field(default=40, ge=0, le=100, description="Hysteresis.")
    bucket_minutes: int = Field(default=60, gt=0, le=MINUTES_PER_DAY)
    level_half_life_hours: float = Field(default=12, gt=0, description="Memory of the level.")
    dispersion_half_life_days: float = Field(default=3, gt=0)
    season_half_life_days: float = Field(default=7, gt=0, description="Daily/weekly cycles.")
    reference_half_life_days: float = Field(
        default=14, gt=0, description="Memory of past surprises a surge must stand out from."
    )
    reference_surprise: float = Field(default=6, gt=0, description="Decades; see model.py.")
    winsor_sd: float = Field(default=3, gt=0, description="Baseline updates clipped here.")
    score_scale: float = Field(
        default=4, gt=0, description="score = 100 * (1 - exp(-surprise / score_scale))"
    )
    refractory_hours: float = Field(default=24, ge=0, description="No new onset after one.")
    min_rate_per_day: float = Field(
        default=1, gt=0, description="Floor of the expected rate: one stray event is no surge."
    )
    warmup_days: float = Field(
        default=3, ge=0, description="History a series needs before it may surge."
    )
    min_observed: float = Field(
        default=5, gt=0, description="Least weighted count in a bucket for a surge."
    )
    max_trigger_ids: int = Field(default=3, ge=1, le=5)
    max_event_weight: float = Field(
        default=100, gt=0, description="Clamp per event, so one garbage count cannot poison."
    )
    intent_score_scale: float = Field(
        default=10, gt=0, description="Weight of a third-party signal with score 100."
    )
    source_weights: dict[Topic, float] = Field(
        default_factory=lambda: {FIRST_PARTY_SOURCE: 1.0},
        description="Weight per source (first-party 'web', third-party provider names).",
    )
    other_source_weight: float = Field(default=1, ge=0, description="Sources not listed.")
    internal_domains: frozenset[Topic] = Field(
        default=frozenset(), description="Our own domains: their traffic is not intent."
    )
    competitor_topics: frozenset[Topic] = Field(
        default=frozenset({"competitors"}), description="A customer surging here: churn risk."
    )
    population_partitions: int = Field(
        default=EVENTS.partitions,
        ge=0,
        description="Population series per topic, one per events partition (0: no population).",
    )
    population_prior_count: float = Field(
        default=10, gt=0, description="Pseudo-events shrinking the population's rise to 1."
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

    @field_validator("source_weights")
    @classmethod
    def _lower_sources(cls, value: dict[str, float]) -> dict[str, float]:
        if any(weight < 0 for weight in value.values()):
            raise ValueError("source_weights: a weight must not be negative")
        return {source.lower(): weight for source, weight in value.items()}

    @field_validator("internal_domains", "competitor_topics")
    @classmethod
    def _lower_set(cls, value: frozenset[str]) -> frozenset[str]:
        return frozenset(item.lower() for item in value)

    @property
    def known_topics(self) -> frozenset[str]:
        """The configured topics: metric labels use these, and "other" for the rest
        (third-party topics are free text and would make label sets unbounded)."""
        return frozenset({self.web_topic, *self.url_topics.values(), *self.competitor_topics})

    @cached_property
    def bucket_span(self) -> timedelta:
        """A bucket's length, built once: ``timedelta(minutes=...)`` cost more than the rest
        of ``detector.bucket_index``, which runs twice per event and topic."""
        return timedelta(minutes=self.bucket_minutes)

    @cached_property
    def warmup_buckets(self) -> int:
        return math.ceil(self.warmup_days * MINUTES_PER_DAY / self.bucket_minutes)

    @cached_property
    def model_params(self) -> model.Params:
        """The surge model's per-bucket parameters (see ``services.intent.model``)."""
        return model.params(
            self.bucket_minutes,
            level_half_life_hours=self.level_half_life_hours,
            dispersion_half_life_days=self.dispersion_half_life_days,
            season_half_life_days=self.season_half_life_days,
            reference_half_life_days=self.reference_half_life_days,
            reference=self.reference_surprise,
            clip=self.winsor_sd,
            score_scale=self.score_scale,
            alert=self.surge_threshold,
            refractory_hours=self.refractory_hours,
            min_rate_per_day=self.min_rate_per_day,
        )


def load_intent_config(path: Path | None) -> IntentConfig:
    """The defaults, or the JSON object in ``path`` (fields not given keep their default)."""
    if path is None:
        return IntentConfig()
    return IntentConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
