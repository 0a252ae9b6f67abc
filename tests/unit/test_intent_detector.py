"""The per-series surge detector: EWMA math, scores, transitions, state persistence."""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta

import pytest

from services.intent.config import IntentConfig
from services.intent.detector import (
    SeriesState,
    Transition,
    bucket_index,
    ewma_skip,
    ewma_update,
    observe,
    surge_score,
)

CONFIG = IntentConfig()
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)


def run(
    state: SeriesState | None, at: datetime, n: int, weight: float = 1.0
) -> tuple[SeriesState, list[Transition]]:
    """``n`` events of ``weight`` at ``at``, a second apart."""
    transitions = []
    for i in range(n):
        state, transition = observe(state, at + timedelta(seconds=i), weight, f"e{i}", CONFIG)
        if transition is not None:
            transitions.append(transition)
    assert state is not None
    return state, transitions


def warm(buckets: int = 1000, at: datetime = T0) -> SeriesState:
    """A series with ``buckets`` of observed silence, open bucket at ``at``."""
    return SeriesState.empty(at, buckets)


# --- the math -----------------------------------------------------------------------------


@pytest.mark.parametrize("k", [0, 1, 2, 5, 24, 720])
@pytest.mark.parametrize("buckets", [0, 1, 30, 5000])
def test_ewma_skip_equals_k_empty_updates(k: int, buckets: int) -> None:
    mean, var = (3.7, 12.5) if buckets else (0.0, 0.0)
    loop_mean, loop_var = mean, var
    for i in range(k):
        loop_mean, loop_var = ewma_update(loop_mean, loop_var, buckets + i, 0.0, CONFIG.decay)
    skipped = ewma_skip(mean, var, buckets, k, CONFIG.decay)
    assert skipped == pytest.approx((loop_mean, loop_var), rel=1e-9, abs=1e-12)


def test_baseline_has_no_start_up_bias() -> None:
    mean, var = 0.0, 0.0
    for n in range(48):
        mean, var = ewma_update(mean, var, n, 5.0, CONFIG.decay)
    assert mean == pytest.approx(5.0)
    assert var == pytest.approx(0.0, abs=1e-9)


def test_baseline_weighs_recent_buckets_more() -> None:
    mean, var = 0.0, 0.0
    for n, x in enumerate([0.0] * 100 + [10.0] * 100):
        mean, var = ewma_update(mean, var, n, x, CONFIG.decay)
    assert 5.0 < mean < 10.0
    assert var == pytest.approx(mean * (10.0 - mean))  # two values: p * (1 - p) * 10**2


def test_score_is_zero_at_or_below_baseline_and_grows_below_100() -> None:
    assert surge_score(0.0, 2.0, 2.0, CONFIG) == 0.0
    assert surge_score(2.0, 2.0, 2.0, CONFIG) == 0.0
    scores = [surge_score(x, 2.0, 2.0, CONFIG) for x in (3, 5, 10, 30, 1000)]
    assert scores == sorted(scores)
    assert all(0 < s <= 100 for s in scores)


def test_variance_floor_is_poisson_like() -> None:
    # a series that never varied (var 0) at a mean of 20 still has a spread of sqrt(20 + 1)
    assert surge_score(25.0, 20.0, 0.0, CONFIG) == surge_score(25.0, 20.0, 20.0, CONFIG)


def test_bucket_index_is_aligned_to_utc_hours() -> None:
    assert bucket_index(T0, CONFIG) == bucket_index(T0 + timedelta(minutes=59), CONFIG)
    assert bucket_index(T0 + timedelta(minutes=60), CONFIG) == bucket_index(T0, CONFIG) + 1


# --- sparse series ------------------------------------------------------------------------


def test_gap_of_30_days_matches_hour_by_hour_reference() -> None:
    state, _ = run(warm(500, T0 - timedelta(days=1)), T0 - timedelta(days=1), 4)
    state, _ = run(state, T0, 3)
    assert (state.buckets, state.count) == (524, 3.0)
    assert state.mean > 0
    after, _ = observe(state, T0 + timedelta(days=30), 1.0, "late", CONFIG)

    mean, var = ewma_update(state.mean, state.var, 524, 3.0, CONFIG.decay)
    for n in range(525, 524 + 30 * 24):
        mean, var = ewma_update(mean, var, n, 0.0, CONFIG.decay)
    assert after.mean == pytest.approx(mean, rel=1e-9)
    assert after.var == pytest.approx(var, rel=1e-9)
    assert after.buckets == 524 + 30 * 24
    assert after.bucket_start == T0 + timedelta(days=30)
    assert after.count == 1.0
    assert after.triggers == ("late",)


def test_gap_of_millennia_is_constant_time() -> None:
    state, _ = run(warm(), T0, 3)
    started = time.perf_counter()
    after, _ = observe(state, datetime(9000, 1, 1, tzinfo=UTC), 1.0, "x", CONFIG)
    assert time.perf_counter() - started < 0.5
    assert after.mean == 0.0
    assert after.buckets > 60_000_000


def test_late_event_is_ignored() -> None:
    state, _ = run(warm(), T0, 2)
    after, transition = observe(state, T0 - timedelta(minutes=1), 1.0, "old", CONFIG)
    assert after is state
    assert transition is None


# --- transitions --------------------------------------------------------------------------


def test_brand_new_series_never_surges_during_warmup() -> None:
    state, transitions = run(None, T0, 60)
    assert transitions == []
    assert not state.surging
    assert state.buckets == 0

    later, transitions = run(state, T0 + timedelta(hours=5), 60)
    assert transitions == []
    assert later.buckets < CONFIG.warmup_buckets


def test_one_visit_is_never_a_surge() -> None:
    touchy = IntentConfig(z_scale=0.5)  # a single visit alone scores above 60 here
    state, transition = observe(warm(), T0, 1.0, "e1", touchy)
    assert state.score >= touchy.surge_threshold
    assert transition is None
    assert not state.surging


def test_burst_on_quiet_series_starts_once() -> None:
    state, transitions = run(warm(), T0, 30)
    assert [t.kind for t in transitions] == ["started"]
    started = transitions[0]
    assert started.score >= 60
    assert started.observed >= CONFIG.min_observed
    assert started.baseline == pytest.approx(0.0)
    assert started.trigger_event_ids[-1] == f"e{int(started.observed) - 1}"
    assert len(started.trigger_event_ids) == CONFIG.max_trigger_ids
    assert state.surging
    assert state.count == 30


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


def test_surge_can_start_again_after_it_ended() -> None:
    state, _ = run(warm(), T0, 30)
    state, ended = run(state, T0 + timedelta(days=2), 1)
    state, started = run(state, T0 + timedelta(days=2, hours=1), 80)
    assert [t.kind for t in ended + started] == ["ended", "started"]


# --- persistence --------------------------------------------------------------------------


def test_state_round_trips_through_json() -> None:
    state, _ = run(warm(), T0, 30)
    state, _ = observe(state, T0 + timedelta(days=3, minutes=7), 1.0, "x", CONFIG)
    assert SeriesState.from_json(state.to_json()) == state
    assert SeriesState.from_dict(json.loads(json.dumps(state.to_dict()))) == state
    assert SeriesState.from_json(state.to_json()).to_json() == state.to_json()


def test_state_is_small() -> None:
    state = warm(123_456)
    for i in range(40):
        event_id = str(uuid.uuid5(uuid.NAMESPACE_DNS, f"event-{i}"))
        at = T0 + timedelta(hours=i // 7, minutes=i)
        state, _ = observe(state, at, 1.7, event_id, CONFIG)
    assert len(state.triggers) == CONFIG.max_trigger_ids
    assert len(state.to_json().encode()) < 300


def test_state_rejects_garbage() -> None:
    with pytest.raises(ValueError, match="count"):
        SeriesState.from_dict({"bucket_start": "2024-01-01T00:00:00Z", "count": -1})
