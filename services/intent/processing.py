"""Pure core of the intent service: events in, series states and surge events out.

A series is one account's activity on one topic, keyed ``(account domain, topic)``:

- ``page_viewed`` counts toward the web topic (the "web research spike") and toward each
  topic whose ``url_topics`` pattern occurs in the URL's path, from the first-party source
  ``web``;
- ``intent_signal_received`` (third party) counts toward its topic, lower-cased, with
  weight ``count``, else ``score / 100 * intent_score_scale``, else 1, from its
  ``provider`` (else its ``source``);
- anything else, anonymous events (no account), bots and internal traffic (an account in
  or under ``internal_domains``) are ignored;
- a ``ClockTicked`` closes the buckets time has left behind on the surging series of its
  partition, so a surge ends when the account goes quiet, not at its next event.

Sources are fused per topic: every weight is multiplied by its source's weight
(``source_weights``, else ``other_source_weight``), then clamped to ``max_event_weight``.
The detector's clock is the event's ``occurred_at``, but never later than its
``received_at`` (a browser's clock in the future must not jump a series ahead). A
first-party topic series created for an account whose web series already exists starts
with the web series' history, all zero: the account was watched and did not look at it.

Population: the same topic summed over the accounts of one events partition is a series
too, keyed ``(POPULATION_PREFIX + partition, topic)``; accounts are hashed to partitions,
so each is a random sample of the population, and it is updated in exactly the order its
partition is consumed, whichever process owns it (two processes give the surges of one).
An account's expectation is scaled by ``lift = max(1, (others + c) / (mu_pop + c))``:
the rest of the population's count in the open bucket against its expectation, shrunk
towards 1 by ``c = population_prior_count`` pseudo-events. A topic surging for everyone
raises every account's bar.

Same states + same events give the same states and outputs, and the states survive a JSON
round trip exactly, so a crashed consumer recovers by replaying from its stored offsets.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import datetime
from urllib.parse import urlsplit

from schemas import topics
from schemas.events import (
    ClockTicked,
    Event,
    IntentSignalReceived,
    PageViewed,
    SurgeEnded,
    SurgeStarted,
)
from services.intent import model
from services.intent.config import FIRST_PARTY_SOURCE, IntentConfig
from services.intent.detector import SeriesState, Transition, advance, bucket_index, observe

SeriesKey = tuple[str, str]  # (account domain, topic)
SurgeEvent = SurgeStarted | SurgeEnded
Contribution = tuple[str, float]  # (topic, weight)

SOURCE = "intent"
POPULATION_PREFIX = "~population/"
# Fixed forever: surge event ids are uuid5(SURGE_NAMESPACE, "<cause id>:surge:<topic>:<kind>").
SURGE_NAMESPACE = uuid.UUID("5b0c8f86-3f2b-5d8e-9a43-6f1e2d7c4a10")


def source_of(event: Event) -> str:
    """The intent source of ``event``: ``web`` for page views, else the provider."""
    if isinstance(event, IntentSignalReceived):
        return (event.provider or event.source).strip().lower()
    return FIRST_PARTY_SOURCE


def source_label(source: str, config: IntentConfig) -> str:
    """Bounded metric label: a configured source name, else ``other``."""
    return source if source in config.source_weights else "other"


def is_internal(account: str, config: IntentConfig) -> bool:
    return any(account == d or account.endswith("." + d) for d in config.internal_domains)


def is_intent_input(event: Event) -> bool:
    """Whether the detector may do anything with ``event`` (the consumer passes over the
    rest without claiming them): page views and intent signals of accounts, and ticks."""
    if isinstance(event, ClockTicked):
        return True
    return event.account is not None and isinstance(event, PageViewed | IntentSignalReceived)


def topics_for(event: Event, config: IntentConfig) -> list[Contribution]:
    """The (topic, weight) pairs ``event`` contributes to; [] if it is not intent input."""
    if event.account is None or event.is_bot or is_internal(event.account, config):
        return []
    if isinstance(event, PageViewed):
        pairs = [(topic, 1.0) for topic in _page_topics(event.url, config)]
    elif isinstance(event, IntentSignalReceived):
        pairs = _signal_topics(event, config)
    else:
        return []
    factor = config.source_weights.get(source_of(event), config.other_source_weight)
    weighted = [(t, min(w * factor, config.max_event_weight)) for t, w in pairs]
    return [(t, w) for t, w in weighted if w > 0]


def population_key(account: str, topic: str, config: IntentConfig) -> SeriesKey:
    """The population series of ``account``'s partition (Kafka's default partitioner)."""
    partition = topics.partition_of(account, config.population_partitions)
    return f"{POPULATION_PREFIX}{partition}", topic


def contributions(events: Sequence[Event], config: IntentConfig) -> list[list[Contribution]]:
    """``topics_for`` of each event, in order: the consumer works them out once per batch
    and hands them to ``series_keys``, ``apply_events`` and the freshness metric."""
    return [topics_for(event, config) for event in events]


def series_keys(
    events: Sequence[Event],
    config: IntentConfig,
    contributed: Sequence[list[Contribution]] | None = None,
) -> set[SeriesKey]:
    """The series whose states ``apply_events`` reads: load these first. ``contributed``:
    the events' ``contributions``, when already worked out."""
    keys: set[SeriesKey] = set()
    if contributed is None:
        contributed = contributions(events, config)
    for event, pairs in zip(events, contributed, strict=True):
        if event.account is None:
            continue
        for topic, _ in pairs:
            keys.add((event.account, topic))
            if config.population_partitions:
                keys.add(population_key(event.account, topic, config))
    return keys


def apply_events(
    states: dict[SeriesKey, SeriesState],
    events: Sequence[Event],
    config: IntentConfig,
    contributed: Sequence[list[Contribution]] | None = None,
) -> tuple[dict[SeriesKey, SeriesState], list[SurgeEvent]]:
    """Run ``events`` in order over ``states`` (not mutated). ``contributed``: the events'
    ``contributions``, when already worked out.

    Returns the states that changed and the surge events, in order. A key missing from
    ``states`` is a new series.
    """
    view = _View(states)
    outputs: list[SurgeEvent] = []
    if contributed is None:
        contributed = contributions(events, config)
    for event, pairs in zip(events, contributed, strict=True):
        if isinstance(event, ClockTicked):
            outputs += _close_quiet_surges(view, event, config)
            continue
        account = event.account
        if account is None:
            continue
        for topic, weight in pairs:
            key = (account, topic)
            before = view.get(key)
            if before is None:
                before = _seed(event, key, view, config)
            lift = _population(view, event, key, weight, before, config)
            after, transition = observe(
                before, detector_time(event), weight, event.event_id, config, lift
            )
            view.put(key, before, after)
            if transition is not None:
                outputs.append(surge_event(event, key, transition, config))
    return view.changed, outputs


def surging_on(states: Mapping[SeriesKey, SeriesState], partition: int) -> list[SeriesKey]:
    """The surging account series of one events partition, in key order."""
    return sorted(
        key
        for key, state in states.items()
        if state.surging
        and not key[0].startswith(POPULATION_PREFIX)
        and topics.partition_of(key[0], topics.EVENTS.partitions) == partition
    )


def _close_quiet_surges(view: _View, tick: ClockTicked, config: IntentConfig) -> list[SurgeEvent]:
    """A tick closes the buckets that time has left behind on the surging series of its
    partition: a surge whose last bucket scored below ``end_threshold`` ends then, not
    at the account's next event (which may never come)."""
    index = bucket_index(tick.occurred_at, config)
    outputs: list[SurgeEvent] = []
    for key in surging_on(view.merged(), tick.partition):
        before = view.get(key)
        if before is None or before.bucket >= index:
            continue
        after, closing = advance(before, index, config)
        if closing is not None:
            after = after.model_copy(update={"surging": False})
            ended = replace(closing, trigger_event_ids=(tick.event_id,))
            outputs.append(surge_event(tick, key, ended, config))
        view.put(key, before, after)
    return outputs


class _View:
    """The input states overlaid with the ones changed so far."""

    def __init__(self, states: dict[SeriesKey, SeriesState]) -> None:
        self.states = states
        self.changed: dict[SeriesKey, SeriesState] = {}

    def get(self, key: SeriesKey) -> SeriesState | None:
        return self.changed[key] if key in self.changed else self.states.get(key)

    def merged(self) -> dict[SeriesKey, SeriesState]:
        return {**self.states, **self.changed}

    def put(self, key: SeriesKey, before: SeriesState | None, after: SeriesState) -> None:
        if after is not before:
            self.changed[key] = after


def _population(
    view: _View,
    event: Event,
    key: SeriesKey,
    weight: float,
    own: SeriesState | None,
    config: IntentConfig,
) -> float:
    """Count the event into its population series; the lift for the account's score."""
    if not config.population_partitions:
        return 1.0
    pkey = population_key(key[0], key[1], config)
    before = view.get(pkey)
    after, _ = observe(before, detector_time(event), weight, event.event_id, config)
    view.put(pkey, before, after)
    if after.stats[10] < config.warmup_buckets:
        return 1.0
    own_count = own.count if own is not None and own.bucket == after.bucket else 0.0
    others = max(after.count - own_count - weight, 0.0)
    prior = config.population_prior_count
    return max(1.0, (others + prior) / (after.baseline(config) + prior))


def detector_time(event: Event) -> datetime:
    return min(event.occurred_at, event.received_at)


def surge_event(
    cause: Event, key: SeriesKey, transition: Transition, config: IntentConfig
) -> SurgeEvent:
    """The ``SurgeStarted`` / ``SurgeEnded`` for ``transition``, caused by ``cause``."""
    account, topic = key
    name = f"{cause.event_id}:surge:{topic}:{transition.kind}"
    model = SurgeStarted if transition.kind == "started" else SurgeEnded
    return model(
        event_id=str(uuid.uuid5(SURGE_NAMESPACE, name)),
        occurred_at=cause.occurred_at,
        received_at=cause.received_at,
        account=account,
        source=SOURCE,
        topic=topic,
        score=transition.score,
        baseline=transition.baseline,
        observed=transition.observed,
        detector_version=config.detector_version,
        trigger_event_ids=list(transition.trigger_event_ids),
        competitor=True if topic in config.competitor_topics else None,
    )


def _page_topics(url: str, config: IntentConfig) -> list[str]:
    path = _url_path(url)
    topics = [config.web_topic]
    for pattern, topic in config.url_topics.items():
        if pattern in path and topic not in topics:
            topics.append(topic)
    return topics


def _url_path(url: str) -> str:
    """The lower-cased path of ``url`` ("" if it cannot be parsed): hosts never match."""
    try:
        return urlsplit(url.strip()).path.lower()
    except ValueError:
        return ""


def _signal_topics(event: IntentSignalReceived, config: IntentConfig) -> list[Contribution]:
    topic = event.topic.strip().lower()
    if event.count is not None:
        weight = float(event.count)
    elif event.score is not None:
        weight = event.score / 100 * config.intent_score_scale
    else:
        weight = 1.0
    return [(topic, weight)] if topic else []


def _seed(event: Event, key: SeriesKey, view: _View, config: IntentConfig) -> SeriesState | None:
    """A new first-party topic series inherits the web series' history (all zero)."""
    account, topic = key
    if not isinstance(event, PageViewed) or topic == config.web_topic:
        return None
    web = view.get((account, config.web_topic))
    if web is None:
        return None
    return SeriesState.empty(web.bucket, model.silent(web.stats[10]))
