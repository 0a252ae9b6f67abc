"""Pure core of the intent service: events in, series states and surge events out.

A series is one account's activity on one topic, keyed ``(account domain, topic)``:

- ``page_viewed`` counts 1 toward the web topic (the "web research spike") and 1 toward
  each topic whose ``url_topics`` pattern occurs in the URL's path;
- ``intent_signal_received`` (third party) counts toward its topic, lower-cased, with
  weight ``count``, else ``score / 100 * intent_score_scale``, else 1;
- anything else, anonymous events (no account) and bots are ignored.

Weights are clamped to ``max_event_weight``. The detector's clock is the event's
``occurred_at``, but never later than its ``received_at`` (a browser's clock in the future
must not jump a series ahead). A first-party topic series created for an account whose web
series already exists starts with the web series' history, all zero: the account was
watched and did not look at that topic.

Same states + same events give the same states and outputs, and the states survive a JSON
round trip exactly, so a crashed consumer recovers by replaying from its stored offsets.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from urllib.parse import urlsplit

from schemas.events import Event, IntentSignalReceived, PageViewed, SurgeEnded, SurgeStarted
from services.intent.config import IntentConfig
from services.intent.detector import SeriesState, Transition, observe

SeriesKey = tuple[str, str]  # (account domain, topic)
SurgeEvent = SurgeStarted | SurgeEnded

SOURCE = "intent"
# Fixed forever: surge event ids are uuid5(SURGE_NAMESPACE, "<cause id>:surge:<topic>:<kind>").
SURGE_NAMESPACE = uuid.UUID("5b0c8f86-3f2b-5d8e-9a43-6f1e2d7c4a10")


def topics_for(event: Event, config: IntentConfig) -> list[tuple[str, float]]:
    """The (topic, weight) pairs ``event`` contributes to; [] if it is not intent input."""
    if event.account is None or event.is_bot:
        return []
    if isinstance(event, PageViewed):
        return [(topic, 1.0) for topic in _page_topics(event.url, config)]
    if isinstance(event, IntentSignalReceived):
        return _signal_topics(event, config)
    return []


def series_keys(events: Sequence[Event], config: IntentConfig) -> set[SeriesKey]:
    """The series whose states ``apply_events`` reads: load these first."""
    return {
        (event.account, topic)
        for event in events
        if event.account is not None
        for topic, _ in topics_for(event, config)
    }


def apply_events(
    states: dict[SeriesKey, SeriesState], events: Sequence[Event], config: IntentConfig
) -> tuple[dict[SeriesKey, SeriesState], list[SurgeEvent]]:
    """Run ``events`` in order over ``states`` (not mutated).

    Returns the states that changed and the surge events, in order. A key missing from
    ``states`` is a new series.
    """
    changed: dict[SeriesKey, SeriesState] = {}
    outputs: list[SurgeEvent] = []
    for event in events:
        account = event.account
        if account is None:
            continue
        for topic, weight in topics_for(event, config):
            key = (account, topic)
            before = _latest(key, changed, states)
            if before is None:
                before = _seed(event, key, changed, states, config)
            after, transition = observe(
                before, detector_time(event), weight, event.event_id, config
            )
            if after is not before:
                changed[key] = after
            if transition is not None:
                outputs.append(surge_event(event, key, transition, config))
    return changed, outputs


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


def _signal_topics(event: IntentSignalReceived, config: IntentConfig) -> list[tuple[str, float]]:
    topic = event.topic.strip().lower()
    if event.count is not None:
        weight = float(event.count)
    elif event.score is not None:
        weight = event.score / 100 * config.intent_score_scale
    else:
        weight = 1.0
    weight = min(weight, config.max_event_weight)
    return [(topic, weight)] if topic and weight > 0 else []


def _latest(
    key: SeriesKey, changed: dict[SeriesKey, SeriesState], states: dict[SeriesKey, SeriesState]
) -> SeriesState | None:
    return changed[key] if key in changed else states.get(key)


def _seed(
    event: Event,
    key: SeriesKey,
    changed: dict[SeriesKey, SeriesState],
    states: dict[SeriesKey, SeriesState],
    config: IntentConfig,
) -> SeriesState | None:
    """A new first-party topic series inherits the web series' history (all zero)."""
    account, topic = key
    if not isinstance(event, PageViewed) or topic == config.web_topic:
        return None
    web = _latest((account, config.web_topic), changed, states)
    return SeriesState.empty(web.bucket_start, web.buckets) if web is not None else None
