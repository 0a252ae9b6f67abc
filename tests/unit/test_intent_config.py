"""Intent configuration: defaults, JSON loading, validation."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from services.intent.config import IntentConfig, load_intent_config


def test_defaults() -> None:
    config = load_intent_config(None)
    assert config == IntentConfig()
    assert (config.surge_threshold, config.end_threshold) == (60, 40)
    assert config.detector_version == "ewma-1"
    assert config.web_topic == "web"
    assert config.url_topics["/vs/"] == config.url_topics["/compare"] == "competitors"
    assert config.half_life_buckets == 7 * 24
    assert config.decay == pytest.approx(0.5 ** (1 / 168))
    assert config.warmup_buckets == 3 * 24


def test_durations_follow_the_bucket_size() -> None:
    config = IntentConfig(bucket_minutes=15)
    assert config.half_life_buckets == 7 * 24 * 4
    assert config.warmup_buckets == 3 * 24 * 4


def test_load_from_json_keeps_unset_defaults(tmp_path: Path) -> None:
    path = tmp_path / "intent.json"
    path.write_text('{"surge_threshold": 70, "url_topics": {"/Careers": " Hiring "}}')
    config = load_intent_config(path)
    assert config.surge_threshold == 70
    assert config.end_threshold == 40
    assert config.url_topics == {"/careers": "hiring"}


@pytest.mark.parametrize(
    "fields",
    [
        {"surge_treshold": 70},  # typo
        {"end_threshold": 70},  # above the surge threshold
        {"bucket_minutes": 0},
        {"url_topics": {"": "x"}},
        {"url_topics": {"/x": " "}},
        {"max_trigger_ids": 6},
    ],
)
def test_rejects_bad_config(fields: dict[str, object]) -> None:
    with pytest.raises(ValidationError):
        IntentConfig.model_validate(fields)


def test_is_frozen() -> None:
    with pytest.raises(ValidationError):
        IntentConfig().surge_threshold = 1  # type: ignore[misc]
