"""Windows that expire with no event: when they fall due, the lazy path (at the account's
next event) and the sweep path (a ``ClockTicked``) agree, and ticks are bounded."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from schemas import topics
from schemas.events import ClockTicked, Event, Stage, StageChanged
from services.funnel.clock import ticks
from services.funnel.config import FunnelConfig
from services.funnel.expiry import due_at
from services.funnel.processing import apply_events
from tests.unit.funnel_scenarios import CONFIG, ICP_FIT, T0, ev, run

JUST_AFTER = timedelta(microseconds=1)
ACME_PARTITION = topics.partition_of("acme.com", topics.EVENTS.partitions)


def tick(day: float, partition: int = ACME_PARTITION) -> ClockTicked:
    at = T0 + timedelta(days=day)
    return ClockTicked(
        event_id=f"tick-{partition}-{day}",
        occurred_at=at,
        received_at=at,
        source="clock",
        partition=partition,
    )


def engaged_on_day_1() -> list[Event]:
    return [ev("account_upserted", 0, **ICP_FIT), ev("page_viewed", 1, url="/blog")]


def test_due_at_is_the_first_window_end_after_the_clock() -> None:
    state, _ = run(engaged_on_day_1())
    assert state is not None and state.stage is Stage.ENGAGED
    # Recent engagement (30 days) runs out before the engagement window (90 days).
    assert due_at(state, CONFIG) == T0 + timedelta(days=31) + JUST_AFTER
    later = state.model_copy(update={"clock": T0 + timedelta(days=40)})
    assert due_at(later, CONFIG) == T0 + timedelta(days=91) + JUST_AFTER
    done = state.model_copy(update={"clock": T0 + timedelta(days=91, microseconds=1)})
    assert due_at(done, CONFIG) is None


def test_a_tick_lapses_an_account_that_sends_nothing_more() -> None:
    states, _ = apply_events({}, engaged_on_day_1(), CONFIG)
    swept, outputs = apply_events(states, [tick(100)], CONFIG)
    lapse = [o for o in outputs if isinstance(o, StageChanged)]
    assert [(o.from_stage, o.to_stage, o.rule) for o in lapse] == [
        (Stage.ENGAGED, Stage.TARGET, "engagement_lapsed")
    ]
    assert lapse[0].occurred_at == T0 + timedelta(days=91) + JUST_AFTER
    assert swept["acme.com"].stage is Stage.TARGET


def test_sweep_and_lazy_paths_give_the_same_outputs_and_state() -> None:
    states, _ = apply_events({}, engaged_on_day_1(), CONFIG)
    next_event = ev("nps_submitted", 120, score=9)
    lazy_states, lazy_outputs = apply_events(states, [next_event], CONFIG)
    swept_states, swept_outputs = apply_events(states, [tick(100), next_event], CONFIG)
    assert swept_outputs == lazy_outputs
    assert swept_states == lazy_states
    assert len(lazy_outputs) >= 2  # a tier drop on day 31 and the lapse on day 91


def test_a_tick_leaves_other_partitions_and_accounts_not_yet_due_alone() -> None:
    states, _ = apply_events({}, engaged_on_day_1(), CONFIG)
    other = (ACME_PARTITION + 1) % topics.EVENTS.partitions
    assert apply_events(states, [tick(100, other)], CONFIG) == ({}, [])
    _, early = apply_events(states, [tick(20)], CONFIG)
    assert early == []


def test_one_tick_expires_at_most_the_configured_number_earliest_first() -> None:
    domains = [d for d in (f"a{i}.com" for i in range(200)) if _partition(d) == ACME_PARTITION]
    domains = domains[:3]
    events = [
        ev("account_upserted", 0, event_id=f"u-{d}", account=d, **ICP_FIT) for d in domains
    ] + [
        ev("page_viewed", day, event_id=f"v-{d}", account=d, url="/")
        for day, d in zip((3, 1, 2), domains, strict=True)
    ]
    config = FunnelConfig(max_expiries_per_tick=2)
    states, _ = apply_events({}, events, config)
    first, _ = apply_events(states, [tick(200)], config)
    # Engaged on days 3, 1, 2: the two earliest windows (days 1 and 2) go first.
    assert sorted(first) == sorted([domains[1], domains[2]])
    second, _ = apply_events({**states, **first}, [tick(201)], config)
    assert list(second) == [domains[0]]


def test_ticks_of_one_round_share_a_rounded_time_and_stable_ids() -> None:
    now = datetime(2026, 11, 22, 21, 7, 42, 500_000, tzinfo=UTC)
    round_ = ticks(now, interval_s=60, lateness_s=300, partitions=12)
    assert [t.partition for t in round_] == list(range(12))
    assert {t.occurred_at for t in round_} == {datetime(2026, 11, 22, 21, 2, tzinfo=UTC)}
    again = ticks(now + timedelta(seconds=10), interval_s=60, lateness_s=300, partitions=12)
    assert [t.event_id for t in again] == [t.event_id for t in round_]


def _partition(domain: str) -> int:
    return topics.partition_of(domain, topics.EVENTS.partitions)


def test_the_scores_age_with_the_windows_they_count() -> None:
    states, _ = apply_events({}, engaged_on_day_1(), CONFIG)
    before = states["acme.com"].scores["engagement"]["score"]
    assert before > 0
    swept, _ = apply_events(states, [tick(40)], CONFIG)
    scores = swept["acme.com"].scores
    # The 30-day window of the day-1 visit ran out on day 31: nothing left to count.
    assert scores["engagement"]["score"] == 0
    assert scores["as_of"] == (T0 + timedelta(days=31)).date()
