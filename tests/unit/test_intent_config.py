"""Intent configuration: defaults, JSON loading, validation."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.intent.config import IntentConfig, load_intent_config


def test_defaults() -> None:
    config = load_intent_config(None)
    assert config == IntentConfig()
    assert (config.surge_threshold, config.end_threshold) == (60, 40)
    assert config.detector_version == "nb-seasonal-3"
    assert config.web_topic == "web"
    assert config.url_topics["/vs/"] == config.url_topics["/compare"] == "competitors"
    assert config.competitor_topics == {"competitors"}
    assert config.source_weights == {"web": 1.0}
    assert config.population_partitions == 12
    assert config.warmup_buckets == 3 * 24
    params = config.model_params
    assert (1 - params.a) ** 12 == pytest.approx(0.5)  # level half-life 12 hours
    assert (params.refractory, params.alert) == (24, 60)


def test_durations_follow_the_bucket_size() -> None:
    config = IntentConfig(bucket_minutes=15)
    assert config.warmup_buckets == 3 * 24 * 4
    assert config.model_params.refractory == 24 * 4
    assert (1 - config.model_params.a) ** (12 * 4) == pytest.approx(0.5)


def test_load_from_json_keeps_unset_defaults(tmp_path: Path) -> None:
    path = tmp_path / "intent.json"
    path.write_text(
        '{"surge_threshold": 70, "url_topics": {"/Careers": " Hiring "},'
        ' "competitor_topics": ["Rival"], "internal_domains": ["Us.io"]}'
    )
    config = load_intent_config(path)
    assert config.surge_threshold == 70
    assert config.end_threshold == 40
    assert config.url_topics == {"/careers": "hiring"}
    assert (config.competitor_topics, config.internal_domains) == ({"rival"}, {"us.io"})
    assert config.model_params.alert == 70


@pytest.mark.parametrize(
    "fields",
    [
        {"surge_treshold": 70},  # typo
        {"end_threshold": 70},  # above the surge threshold
        {"bucket_minutes": 0},
        {"url_topics": {"": "x"}},
        {"url_topics": {"/x": " "}},
        {"max_trigger_ids": 6},
        {"source_weights": {"web": -1}},
        {"half_life_days": 7},  # the ewma-1 setting is gone: rejected, not ignored
    ],
)
def test_rejects_bad_config(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        IntentConfig.model_validate(fields)


def test_is_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        IntentConfig().surge_threshold = 1  # type: ignore[misc]
