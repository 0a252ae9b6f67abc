"""The surge model's math: the count tail, robust seasonal baseline, refractory, packing."""

from __future__ import annotations

import math
import random

import pytest

from services.intent import model

P60 = model.params(60)
MIDNIGHT = 28_000_000 // 1440 * 1440  # a midnight, in minutes since the epoch


def poisson_tail(x: int, mu: float) -> float:
    """Exact P(X >= x) for Poisson(mu), summed upwards from x."""
    return sum(math.exp(k * math.log(mu) - mu - math.lgamma(k + 1)) for k in range(x, x + 1000))


def draw(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k, p = k + 1, p * rng.random()
    return k


@pytest.mark.parametrize(("x", "mu"), [(5, 1.0), (10, 2.0), (30, 10.0), (200, 100.0)])
def test_tail_follows_the_poisson_tail(x: int, mu: float) -> None:
    exact = -math.log10(poisson_tail(x, mu))
    assert model.surprise(x, mu, mu) == pytest.approx(exact, abs=0.35, rel=0.1)


def test_tail_is_zero_at_the_mean_and_lighter_with_overdispersion() -> None:
    assert model.surprise(2, 2.0, 2.0) == 0.0
    assert model.surprise(0, 2.0, 2.0) == 0.0
    poisson, overdispersed = model.surprise(20, 5.0, 5.0), model.surprise(20, 5.0, 30.0)
    assert poisson > overdispersed > 0
    assert model.surprise(10**6, 1.0, 1.0) > 100  # the asymptote: no overflow, no cap


def test_params_keep_the_memory_in_time_whatever_the_bucket() -> None:
    p5 = model.params(5)
    assert (1 - p5.a) ** 12 == pytest.approx(1 - P60.a)
    assert p5.refractory == 12 * P60.refractory == 288
    assert p5.floor * 12 == pytest.approx(P60.floor)


def test_learns_the_level_and_the_daily_cycle() -> None:
    rng = random.Random(3)
    state = model.EMPTY
    for hour in range(24 * 28):
        rate = 20.0 if 9 <= hour % 24 < 17 else 4.0
        state, _ = model.step(P60, state, draw(rng, rate), MIDNIGHT + hour * 60)
    end = MIDNIGHT + 24 * 28 * 60
    noon, _, _ = model.expected(P60, state, end + 12 * 60)
    night, _, _ = model.expected(P60, state, end + 3 * 60)
    assert noon == pytest.approx(20, rel=0.35)
    assert night == pytest.approx(4, rel=0.35)


def test_a_surge_does_not_inflate_its_own_baseline() -> None:
    state = model.EMPTY
    for hour in range(24 * 7):
        state, _ = model.step(P60, state, 10.0, MIDNIGHT + hour * 60)
    level = state[0]
    after, onset = model.step(P60, state, 1000.0, MIDNIGHT + 24 * 7 * 60)
    assert onset > 60
    sd = math.sqrt(max(state[1], 10.0))
    assert after[0] - level <= P60.a * (P60.clip * sd) * 2  # winsorised, not +a * 990


def test_onset_then_refractory() -> None:
    state = model.EMPTY
    for hour in range(24 * 7):
        state, _ = model.step(P60, state, 10.0, MIDNIGHT + hour * 60)
    start = MIDNIGHT + 24 * 7 * 60
    onsets = []
    for hour in range(30):
        state, onset = model.step(P60, state, 200.0, start + hour * 60)
        onsets.append(onset)
    assert onsets[0] >= 60
    assert onsets[1 : P60.refractory + 1] == [0.0] * P60.refractory
    assert all(0.0 <= s <= 100.0 for s in onsets)


def test_repeated_big_surprises_raise_the_bar() -> None:
    quiet = model.EMPTY
    for hour in range(24 * 7):
        quiet, _ = model.step(P60, quiet, 10.0, MIDNIGHT + hour * 60)
    jumpy = (*quiet[:8], 80.0, *quiet[9:])  # past surprises of 80 decades
    at = MIDNIGHT + 24 * 7 * 60
    assert model.score_of(P60, jumpy, 60.0, at) < model.score_of(P60, quiet, 60.0, at)


def test_skip_equals_empty_steps_up_to_a_week_and_is_cheap_beyond() -> None:
    state = model.EMPTY
    for hour in range(50):
        state, _ = model.step(P60, state, 5.0, MIDNIGHT + hour * 60)
    at = MIDNIGHT + 50 * 60
    stepped = state
    for i in range(30):
        stepped, _ = model.step(P60, stepped, 0.0, at + i * 60)
    assert model.skip(P60, state, at, 30) == stepped
    far = model.skip(P60, state, at, 10**9)
    assert far[10] == state[10] + 10**9
    assert far[0] == 0.0


def test_pack_round_trips_exactly() -> None:
    state = model.EMPTY
    for hour in range(40):
        state, _ = model.step(P60, state, float(hour % 7), MIDNIGHT + hour * 60)
    packed = model.pack(state)
    assert len(packed) == 96
    assert model.unpack(packed) == state


def test_an_nb_seasonal_2_state_restores_without_a_previous_bucket() -> None:
    state = model.EMPTY
    for hour in range(40):
        state, _ = model.step(P60, state, float(hour % 7), MIDNIGHT + hour * 60)
    old = model._PACK_V2.pack(*state[:9], int(state[9]), int(state[10]))
    assert len(old) == 80
    assert model.unpack(old) == (*state[:11], 0.0, 0.0)


def steady(count: float, hours: int = 24 * 7) -> model.State:
    state = model.EMPTY
    for hour in range(hours):
        state, _ = model.step(P60, state, count, MIDNIGHT + hour * 60)
    return state


def test_a_sustained_rise_adds_evidence_over_two_buckets() -> None:
    state, at = steady(10.0), MIDNIGHT + 24 * 7 * 60
    after_quiet, _ = model.step(P60, state, 10.0, at)
    after_high, _ = model.step(P60, state, 22.0, at)
    alone = model.score_of(P60, after_quiet, 22.0, at + 60)
    second = model.score_of(P60, after_high, 22.0, at + 60)
    assert second > alone > 0.0
    mu, _, _ = model.expected(P60, after_high, at + 60)
    var = max(after_high[1], mu)
    pair = model.surprise(22.0 + after_high[11], mu + after_high[12], 2 * var)
    assert model.evidence(22.0, mu, var, after_high[11], after_high[12]) == pytest.approx(
        pair - model.PAIR_CHARGE
    )


def test_an_isolated_spike_does_not_fire_the_bucket_after_it() -> None:
    state, at = steady(10.0), MIDNIGHT + 24 * 7 * 60
    spiked, onset = model.step(P60, state, 1000.0, at)
    assert onset >= 60
    assert spiked[11] < 10.0 + P60.clip * math.sqrt(max(state[1], 10.0)) + 1e-9  # winsorised
    fresh = (*spiked[:9], 0.0, *spiked[10:])  # as if not refractory
    assert model.score_of(P60, fresh, 10.0, at + 60) < 20.0


def test_the_pair_is_charged_for_the_extra_look() -> None:
    # previous bucket exactly at its expectation: the pair carries no more evidence
    # than the bucket alone, so the bucket's own surprise decides
    single = model.surprise(30.0, 10.0, 10.0)
    assert model.evidence(30.0, 10.0, 10.0, 10.0, 10.0) == single
    assert model.evidence(5.0, 10.0, 10.0, 10.0, 10.0) == 0.0
