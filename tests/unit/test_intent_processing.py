"""Events in, series states and surge events out: the intent service's pure core."""

from __future__ import annotations

import math
import random
import uuid
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import topics
from schemas.events import (
    ChatOccurred,
    ClockTicked,
    Event,
    IntentSignalReceived,
    NpsSubmitted,
    PageViewed,
    SurgeEnded,
    SurgeStarted,
)
from services.intent.config import IntentConfig
from services.intent.detector import SeriesState, bucket_index
from services.intent.processing import (
    POPULATION_PREFIX,
    SURGE_NAMESPACE,
    SeriesKey,
    apply_events,
    contributions,
    is_intent_input,
    population_key,
    series_keys,
    topics_for,
)

CONFIG = IntentConfig()
T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
ACME = "acme.com"
_ids = iter(range(10**9))


def page(at: datetime, url: str = "https://acme.com/blog/post", **kw: Any) -> PageViewed:
    fields: dict[str, Any] = {"account": ACME, "source": "web", "url": url}
    return PageViewed(event_id=f"pv-{next(_ids)}", occurred_at=at, received_at=at, **(fields | kw))


def signal(at: datetime, topic: str = "CRM Software", **kw: Any) -> IntentSignalReceived:
    fields: dict[str, Any] = {"account": ACME, "source": "bombora", "topic": topic}
    return IntentSignalReceived(
        event_id=f"is-{next(_ids)}", occurred_at=at, received_at=at, **(fields | kw)
    )


def daily(days: int, start: datetime = T0, url: str = "https://acme.com/blog") -> list[Event]:
    """One visit a day."""
    return [page(start + timedelta(days=d), url) for d in range(days)]


def burst(at: datetime, n: int, url: str = "https://acme.com/blog/post") -> list[Event]:
    """``n`` visits within one hour starting at ``at``."""
    return [page(at + timedelta(seconds=i * 3600 // (n + 1)), url) for i in range(n)]


def accounts_only(keys: Iterable[SeriesKey]) -> set[SeriesKey]:
    return {key for key in keys if not key[0].startswith(POPULATION_PREFIX)}


def kinds(outputs: Sequence[SurgeStarted | SurgeEnded]) -> list[tuple[str, str]]:
    return [(o.type, o.topic) for o in outputs]


# --- the scenarios ------------------------------------------------------------------------


def test_quiet_account_bursts_then_calms_down() -> None:
    history = daily(21)
    spike = burst(T0 + timedelta(days=21, hours=3), 30)
    calm = daily(3, T0 + timedelta(days=22))

    states, outputs = apply_events({}, [*history, *spike, *calm], CONFIG)

    assert kinds(outputs) == [("surge_started", "web"), ("surge_ended", "web")]
    started, ended = outputs
    assert isinstance(started, SurgeStarted)
    assert started.score >= 60
    assert started.account == ACME
    assert started.observed >= CONFIG.min_observed
    assert started.baseline < 0.1
    assert started.trigger_event_ids[-1] in {e.event_id for e in spike}
    assert started.detector_version == CONFIG.detector_version
    assert isinstance(ended, SurgeEnded)
    assert ended.score < 40
    assert ended.trigger_event_ids == [calm[0].event_id]
    assert not states[(ACME, "web")].surging


def test_burst_on_pricing_surges_web_and_pricing() -> None:
    events = [*daily(21), *burst(T0 + timedelta(days=21, hours=3), 30, "https://acme.com/pricing")]
    _, outputs = apply_events({}, events, CONFIG)
    assert sorted(kinds(outputs)) == [("surge_started", "pricing"), ("surge_started", "web")]


def test_brand_new_account_never_surges() -> None:
    events = [*burst(T0, 40, "https://acme.com/pricing"), *burst(T0 + timedelta(hours=5), 40)]
    states, outputs = apply_events({}, events, CONFIG)
    assert outputs == []
    assert accounts_only(states) == {(ACME, "web"), (ACME, "pricing")}


def _poisson(rng: random.Random, lam: float) -> int:
    limit, k, p = math.exp(-lam), 0, rng.random()
    while p > limit:
        k, p = k + 1, p * rng.random()
    return k


def _business_hours(weeks: int, rate: float) -> Iterator[Event]:
    rng = random.Random(42)
    for day in range(weeks * 7):
        for hour in range(9, 17) if day % 7 < 5 else ():
            at = T0.replace(hour=hour) + timedelta(days=day)
            yield from burst(at, _poisson(rng, rate))


def test_steady_busy_account_never_surges() -> None:
    events = list(_business_hours(weeks=4, rate=6))
    states, outputs = apply_events({}, events, CONFIG)
    assert outputs == []
    web = states[(ACME, "web")]
    noon = web.model_copy(update={"bucket": web.bucket - 4})  # the open bucket is 16:00
    night = web.model_copy(update={"bucket": web.bucket + 8})
    assert noon.baseline(CONFIG) > 5 * night.baseline(CONFIG)  # the daily cycle is learned


def test_third_party_signals_surge_on_their_topic() -> None:
    quiet = [signal(T0 + timedelta(days=d), count=1) for d in range(14)]
    spike = [signal(T0 + timedelta(days=14, hours=2), topic="crm software", count=40)]
    _, outputs = apply_events({}, [*quiet, *spike], CONFIG)
    assert kinds(outputs) == [("surge_started", "crm software")]
    assert outputs[0].observed == 40


# --- inputs -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("url", "topics"),
    [
        ("https://acme.com/blog/x", ["web"]),
        ("https://acme.com/Pricing?plan=pro", ["web", "pricing"]),
        ("https://acme.com/book-a/demo", ["web", "demo"]),
        ("https://acme.com/integrations/salesforce", ["web", "integrations"]),
        ("https://acme.com/compare/acme-vs/x", ["web", "competitors"]),
        ("https://acme.com/compare/vs/rival", ["web", "competitors"]),
        ("https://acme.com/security", ["web", "security"]),
        ("https://demo.acme.com/", ["web"]),  # hosts never match
        ("https://acme.com/?next=/pricing", ["web"]),  # nor do query strings
        ("/pricing", ["web", "pricing"]),
        ("http://[::1/pricing", ["web"]),  # unparseable: still a visit
    ],
)
def test_page_topics(url: str, topics: list[str]) -> None:
    assert topics_for(page(T0, url), CONFIG) == [(t, 1.0) for t in topics]


def test_custom_url_topics_replace_the_defaults() -> None:
    config = IntentConfig(url_topics={"/Careers": "Hiring"}, web_topic="site")
    assert topics_for(page(T0, "https://acme.com/careers/1"), config) == [
        ("site", 1.0),
        ("hiring", 1.0),
    ]
    assert topics_for(page(T0, "https://acme.com/pricing"), config) == [("site", 1.0)]


@pytest.mark.parametrize(
    ("fields", "expected"),
    [
        ({"count": 7}, [("crm software", 7.0)]),
        ({"count": 7, "score": 90}, [("crm software", 7.0)]),
        ({"score": 80}, [("crm software", 8.0)]),
        ({}, [("crm software", 1.0)]),
        ({"count": 0}, []),
        ({"score": 0}, []),
        ({"count": 10**9}, [("crm software", 100.0)]),  # clamped to max_event_weight
        ({"topic": "  "}, []),
    ],
)
def test_signal_weights(fields: dict[str, Any], expected: list[tuple[str, float]]) -> None:
    assert topics_for(signal(T0, **fields), CONFIG) == expected


@pytest.mark.parametrize(
    "event",
    [
        page(T0, account=None, anonymous_id="visitor-1"),
        page(T0, is_bot=True),
        signal(T0, account=None),
        signal(T0, is_bot=True),
        NpsSubmitted(
            event_id="nps", occurred_at=T0, received_at=T0, account=ACME, source="s", score=9
        ),
    ],
)
def test_ignored_events(event: Event) -> None:
    assert topics_for(event, CONFIG) == []
    assert series_keys([event], CONFIG) == set()
    assert apply_events({}, [event], CONFIG) == ({}, [])


def test_series_keys() -> None:
    events: list[Event] = [
        page(T0, "https://acme.com/pricing"),
        page(T0, account="globex.com"),
        signal(T0, topic="ERP"),
    ]
    keys = series_keys(events, CONFIG)
    assert accounts_only(keys) == {
        (ACME, "web"),
        (ACME, "pricing"),
        ("globex.com", "web"),
        (ACME, "erp"),
    }
    assert keys - accounts_only(keys) == {
        population_key(a, t, CONFIG) for a, t in accounts_only(keys)
    }


def test_future_occurred_at_is_clamped_to_received_at() -> None:
    event = page(T0).model_copy(update={"occurred_at": T0 + timedelta(days=365)})
    states, _ = apply_events({}, [event], CONFIG)
    assert states[(ACME, "web")].bucket == bucket_index(T0, CONFIG)


# --- the contract with the shell ----------------------------------------------------------


def test_returns_only_changed_states_and_leaves_input_alone() -> None:
    states, _ = apply_events({}, [page(T0), page(T0, account="globex.com")], CONFIG)
    snapshot = dict(states)
    late = page(T0 - timedelta(hours=2), account="globex.com")
    changed, outputs = apply_events(states, [page(T0 + timedelta(hours=1)), late], CONFIG)
    assert set(changed) == {(ACME, "web"), population_key(ACME, "web", CONFIG)}
    assert outputs == []
    assert states == snapshot


def test_surge_event_envelope() -> None:
    spike = burst(T0 + timedelta(days=21, hours=3), 30)
    _, outputs = apply_events({}, [*daily(21), *spike], CONFIG)
    (started,) = outputs
    cause = next(e for e in spike if e.event_id == started.trigger_event_ids[-1])
    name = f"{cause.event_id}:surge:web:started"
    assert started.event_id == str(uuid.uuid5(SURGE_NAMESPACE, name))
    assert (started.occurred_at, started.received_at) == (cause.occurred_at, cause.received_at)
    assert started.source == "intent"
    assert started.anonymous_id is None


def _round_trip(states: dict[SeriesKey, SeriesState]) -> dict[SeriesKey, SeriesState]:
    return {key: SeriesState.from_json(state.to_json()) for key, state in states.items()}


def test_deterministic_also_across_json_round_trips() -> None:
    events = [
        *daily(21),
        *burst(T0 + timedelta(days=21, hours=3), 30, "https://acme.com/pricing"),
        *[signal(T0 + timedelta(days=d, hours=1), score=30) for d in range(22)],
        *daily(3, T0 + timedelta(days=22)),
        page(T0 + timedelta(days=24, hours=5), "https://acme.com/pricing"),
    ]
    whole_states, whole_outputs = apply_events({}, events, CONFIG)
    assert len(whole_outputs) == 4

    states: dict[SeriesKey, SeriesState] = {}
    outputs: list[SurgeStarted | SurgeEnded] = []
    for start in range(0, len(events), 7):
        batch = events[start : start + 7]
        contributed = contributions(batch, CONFIG)  # as the consumer does: worked out once
        keys = series_keys(batch, CONFIG, contributed)
        loaded = {key: states[key] for key in keys if key in states}
        changed, emitted = apply_events(loaded, batch, CONFIG, contributed)
        states |= _round_trip(changed)
        outputs += emitted

    assert [o.model_dump() for o in outputs] == [o.model_dump() for o in whole_outputs]
    assert {k: s.to_json() for k, s in states.items()} == {
        k: s.to_json() for k, s in whole_states.items()
    }
    assert apply_events({}, events, CONFIG) == (whole_states, whole_outputs)


def _tick(at: datetime, partition: int) -> ClockTicked:
    return ClockTicked(
        event_id=f"tick-{partition}-{at.isoformat()}",
        occurred_at=at,
        received_at=at,
        source="clock",
        partition=partition,
    )


def test_a_tick_ends_the_surge_of_an_account_that_went_quiet() -> None:
    history = daily(21)
    spike = burst(T0 + timedelta(days=21, hours=3), 30)
    states, started = apply_events({}, [*history, *spike], CONFIG)
    assert kinds(started) == [("surge_started", "web")]
    acme = topics.partition_of(ACME, topics.EVENTS.partitions)
    later = T0 + timedelta(days=21, hours=6)

    elsewhere = _tick(later, (acme + 1) % topics.EVENTS.partitions)
    assert apply_events(states, [elsewhere], CONFIG) == ({}, [])
    same_hour = _tick(T0 + timedelta(days=21, hours=3, minutes=50), acme)
    assert apply_events(states, [same_hour], CONFIG)[1] == []  # its bucket is still open

    tick = _tick(later, acme)
    after, ended = apply_events(states, [tick], CONFIG)
    assert kinds(ended) == [("surge_ended", "web")]
    assert ended[0].occurred_at == later
    assert ended[0].trigger_event_ids == [tick.event_id]
    assert not after[(ACME, "web")].surging
    assert after[(ACME, "web")].bucket == bucket_index(later, CONFIG)
    # The account's next visit no longer ends it a second time.
    _, next_outputs = apply_events({**states, **after}, [page(later + timedelta(hours=1))], CONFIG)
    assert "surge_ended" not in {o.type for o in next_outputs}


def test_the_consumer_passes_over_what_the_detector_never_uses() -> None:
    acme = topics.partition_of(ACME, topics.EVENTS.partitions)
    used = [page(T0), signal(T0), _tick(T0, acme)]
    unused = [
        page(T0, account=None, anonymous_id="v1"),  # anonymous: no account to watch
        ChatOccurred(event_id="c1", occurred_at=T0, received_at=T0, account=ACME,
                     source="chat", type="chat_started"),
    ]  # fmt: skip
    assert [is_intent_input(e) for e in used] == [True, True, True]
    assert [is_intent_input(e) for e in unused] == [False, False]
    # What is passed over could not have changed any series.
    assert apply_events({}, unused, CONFIG) == ({}, [])
