"""The per-series surge detector: buckets, transitions, hysteresis, state persistence."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.intent import model
from services.intent.config import IntentConfig
from services.intent.detector import SeriesState, Transition, bucket_index, observe
from services.intent.repository import _restore

CONFIG = IntentConfig()
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def run(
    state: SeriesState | None, at: datetime, n: int, weight: float = 1.0, lift: float = 1.0
) -> tuple[SeriesState, list[Transition]]:
    """``n`` events of ``weight`` at ``at``, a second apart."""
    transitions = []
    for i in range(n):
        at_i = at + timedelta(seconds=i)
        state, transition = observe(state, at_i, weight, f"e{i}", CONFIG, lift)
        if transition is not None:
            transitions.append(transition)
    assert state is not None
    return state, transitions


def warm(buckets: int = 1000, at: datetime = T0) -> SeriesState:
    """A series with ``buckets`` of observed silence, open bucket at ``at``."""
    return SeriesState.empty(bucket_index(at, CONFIG), model.silent(buckets))


def test_bucket_index_is_aligned_to_utc_hours() -> None:
    assert bucket_index(T0, CONFIG) == bucket_index(T0 + timedelta(minutes=59), CONFIG)
    assert bucket_index(T0 + timedelta(hours=1), CONFIG) == bucket_index(T0, CONFIG) + 1
    assert bucket_index(T0, IntentConfig(bucket_minutes=5)) == bucket_index(T0, CONFIG) * 12


def test_gap_of_millennia_is_constant_time() -> None:
    state, _ = run(warm(), T0, 3)
    started = time.perf_counter()
    after, _ = observe(state, datetime(9000, 1, 1, tzinfo=UTC), 1.0, "x", CONFIG)
    assert time.perf_counter() - started < 0.5
    assert after.stats[0] == 0.0
    assert after.stats[10] > 60_000_000


def test_late_event_is_ignored() -> None:
    state, _ = run(warm(), T0, 2)
    after, transition = observe(state, T0 - timedelta(minutes=1), 1.0, "old", CONFIG)
    assert after is state
    assert transition is None


def test_brand_new_series_never_surges_during_warmup() -> None:
    state, transitions = run(None, T0, 60)
    assert transitions == []
    assert not state.surging
    later, transitions = run(state, T0 + timedelta(hours=5), 60)
    assert transitions == []
    assert later.stats[10] < CONFIG.warmup_buckets


def test_one_visit_is_never_a_surge() -> None:
    state, transition = observe(warm(), T0, 1.0, "e1", CONFIG)
    assert transition is None
    assert not state.surging


def test_burst_on_quiet_series_starts_once() -> None:
    state, transitions = run(warm(), T0, 30)
    assert [t.kind for t in transitions] == ["started"]
    started = transitions[0]
    assert started.score >= 60
    assert started.observed >= CONFIG.min_observed
    assert started.baseline == pytest.approx(CONFIG.min_rate_per_day / 24)  # the floor
    assert started.trigger_event_ids[-1] == f"e{int(started.observed) - 1}"
    assert len(started.trigger_event_ids) == CONFIG.max_trigger_ids
    assert state.surging
    assert state.count == 30


def test_population_lift_raises_the_bar() -> None:
    _, alone = run(warm(), T0, 8)
    _, with_everyone = run(warm(), T0, 8, lift=200.0)
    assert [t.kind for t in alone] == ["started"]
    assert with_everyone == []


def test_surge_continues_while_next_bucket_stays_high_then_ends() -> None:
    state, _ = run(warm(), T0, 30)
    state, transitions = run(state, T0 + timedelta(hours=1), 25)
    assert transitions == []
    assert state.surging

    state, transitions = run(state, T0 + timedelta(hours=2), 1)
    assert transitions == []  # the hour that just closed (25 visits) was still high
    state, transitions = run(state, T0 + timedelta(hours=3), 1)
    assert [t.kind for t in transitions] == ["ended"]
    ended = transitions[0]
    assert ended.observed == 1.0
    assert ended.score < CONFIG.end_threshold
    assert ended.trigger_event_ids == ("e0",)
    assert not state.surging


def test_surge_ends_after_skipped_empty_buckets() -> None:
    state, _ = run(warm(), T0, 30)
    state, transition = observe(state, T0 + timedelta(hours=5), 1.0, "next", CONFIG)
    assert transition is not None
    assert transition.kind == "ended"
    assert (transition.score, transition.observed) == (0.0, 0.0)
    assert transition.baseline > 0
    assert transition.trigger_event_ids == ("next",)


def test_surge_that_resumes_with_one_heavy_event_does_not_flap() -> None:
    state, _ = run(warm(), T0, 30)
    state, transition = observe(state, T0 + timedelta(hours=5), 60.0, "heavy", CONFIG)
    assert transition is None
    assert state.surging


def test_no_new_surge_within_the_refractory_period_then_again() -> None:
    state, _ = run(warm(), T0, 30)
    state, ended = run(state, T0 + timedelta(hours=2), 1)
    state, soon = run(state, T0 + timedelta(hours=6), 80)
    state, _ = run(state, T0 + timedelta(days=2), 1)
    state, later = run(state, T0 + timedelta(days=2, hours=1), 80)
    assert [t.kind for t in ended + soon + later] == ["ended", "started"]


def test_state_round_trips_through_json() -> None:
    state, _ = run(warm(), T0, 30)
    state, _ = observe(state, T0 + timedelta(days=3, minutes=7), 1.0, "x", CONFIG)
    assert SeriesState.from_json(state.to_json()) == state
    assert SeriesState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert SeriesState.model_validate(state.model_dump(mode="json")) == state


def test_state_is_small() -> None:
    state = warm(123_456)
    for i in range(40):
        event_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"event-{i}"))
        at = T0 + timedelta(hours=i // 7, minutes=i)
        state, _ = observe(state, at, 1.7, event_id, CONFIG)
    assert len(state.triggers) == CONFIG.max_trigger_ids
    # three 36-character ids included; the packed model state is 96 bytes (128 base64)
    assert len(state.to_json().encode()) <= 350
    idle = state.model_copy(update={"triggers": ()})
    assert len(idle.to_json().encode()) <= 256


def test_state_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="count"):
        SeriesState.from_dict({"bucket": 1, "count": -1})
    with pytest.raises(ValueError, match="packed"):
        SeriesState.from_dict({"bucket": 1, "packed": "x" * 500})


def test_a_state_of_the_previous_detector_version_restarts_the_series() -> None:
    old = {"bucket_start": "2024-01-01T00:00:00Z", "mean": 1.0, "var": 2.0, "buckets": 9}
    assert _restore(old) is None
    state, _ = run(warm(), T0, 3)
    assert _restore(state.model_dump(mode="json")) == state
