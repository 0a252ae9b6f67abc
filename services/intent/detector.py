r"""Surge detection for one series (one account's activity on one topic), event by event.

Pure and O(1) per event: no clock, no I/O, constant-size state. The statistics live in
``services.intent.model`` (one call per closed bucket); this module cuts events into
buckets, scores the open bucket as it fills and decides the surge transitions.

Buckets
    Time is cut into buckets of ``bucket_minutes`` anchored at the Unix epoch (UTC). The
    state holds the open bucket's weighted count. Events of an earlier bucket than the open
    one arrive too late to change a closed bucket and are ignored (this also keeps
    back-dated replays, e.g. visits attributed after de-anonymisation, from faking a burst).
    An event of a later bucket closes the open one (``model.step``) and the empty buckets
    in between (``model.skip``).

Score
    After each event the open bucket's count so far is scored against the model's
    expectation for that bucket (``model.score_of``): a partial count never exceeds the
    final one, so a surge is flagged as soon as the evidence suffices, within the bucket.
    ``lift`` (>= 1) is the population's relative rise on the topic (see ``processing``):
    the expectation is scaled by it, so a topic surging for everyone is not an account
    surge.

Transitions (hysteresis)
    started: not surging, not refractory (a surge started less than ``refractory_hours``
        ago), score >= surge_threshold, count >= min_observed and at least
        ``warmup_buckets`` of history. Within one bucket the score only grows, so a bucket
        starts at most one surge.
    ended: surging, and the bucket that just closed scored below end_threshold. This is
        evaluated when an event opens a later bucket; if buckets were skipped, the last
        closed bucket was empty and scored 0. If that same event already qualifies the new
        bucket for a surge, the surge simply continues (no ended + started pair).
    A started transition carries the last ``max_trigger_ids`` event ids of its bucket, an
    ended one the id of the event that closed the bucket. A series that falls silent stays
    surging until its next event: ending it on a timer is the caller's business.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any, Literal

from pydantic import ConfigDict, Field
from pydantic.dataclasses import dataclass as pydantic_dataclass

from services.intent import model
from services.intent.config import IntentConfig
from services.kit.records import Frozen

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_EMPTY_MODEL = base64.b64encode(model.pack(model.EMPTY)).decode()


@pydantic_dataclass(frozen=True, config=ConfigDict(extra="forbid"))
class SeriesState(Frozen):
    """Constant-size state of one series (about 200 bytes of JSON without trigger ids)."""

    bucket: int = Field(description="Index of the open bucket (bucket_minutes since epoch).")
    count: float = Field(default=0.0, ge=0, description="Weighted count of the open bucket.")
    packed: str = Field(
        default=_EMPTY_MODEL, max_length=128, description="Packed model state (base64)."
    )
    surging: bool = False
    score: float = Field(default=0.0, ge=0, le=100, description="Score of the open bucket.")
    triggers: tuple[str, ...] = Field(default=(), description="Last event ids of the bucket.")

    @classmethod
    def empty(cls, bucket: int, history: model.State = model.EMPTY) -> SeriesState:
        """A series with nothing counted yet in bucket ``bucket``."""
        return cls(bucket=bucket, packed=_encode(history))

    @property
    def stats(self) -> model.State:
        return _decode(self.packed)

    def baseline(self, config: IntentConfig) -> float:
        """Expected count of the open bucket."""
        mu, _, _ = model.expected(config.model_params, self.stats, self.bucket_minute(config))
        return mu

    def bucket_minute(self, config: IntentConfig) -> int:
        return self.bucket * config.bucket_minutes

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict."""
        return self.model_dump(mode="json")

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SeriesState:
        return cls.model_validate(data)

    def to_json(self) -> str:
        return self.model_dump_json()

    @classmethod
    def from_json(cls, data: str | bytes) -> SeriesState:
        return cls.model_validate_json(data)


@dataclass(frozen=True, slots=True)
class Transition:
    """A surge started or ended, with the numbers it was decided on."""

    kind: Literal["started", "ended"]
    score: float
    baseline: float
    observed: float
    trigger_event_ids: tuple[str, ...]


def _encode(stats: model.State) -> str:
    return base64.b64encode(model.pack(stats)).decode()


@lru_cache(maxsize=4096)
def _decode(packed: str) -> model.State:
    # A state's stats are read several times per event (score, lift, baseline, qualify).
    return model.unpack(base64.b64decode(packed))


def bucket_index(at: datetime, config: IntentConfig) -> int:
    return (at - EPOCH) // config.bucket_span


def bucket_start(index: int, config: IntentConfig) -> datetime:
    return EPOCH + index * config.bucket_span


def observe(
    state: SeriesState | None,
    at: datetime,
    weight: float,
    event_id: str,
    config: IntentConfig,
    lift: float = 1.0,
) -> tuple[SeriesState, Transition | None]:
    """Count one event of ``weight`` at ``at``; the new state and any transition.

    A late event (earlier bucket than the open one) returns ``state`` itself, unchanged.
    """
    index = bucket_index(at, config)
    if state is None:
        state = SeriesState.empty(index)
    if index < state.bucket:
        return state, None
    closing: Transition | None = None
    if index > state.bucket:
        state, closing = advance(state, index, config, lift)
    state = _count(state, weight, event_id, config, lift)
    if closing is not None:
        if _qualifies(state, config, continuing=True):
            return state, None
        ended = replace(closing, trigger_event_ids=(event_id,))
        return state.model_copy(update={"surging": False}), ended
    if not state.surging and _qualifies(state, config):
        return state.model_copy(update={"surging": True}), _started(state, config, lift)
    return state, None


def advance(
    state: SeriesState, index: int, config: IntentConfig, lift: float = 1.0
) -> tuple[SeriesState, Transition | None]:
    """Close the open bucket and the empty ones up to bucket ``index`` (> the open one).

    Returns the rolled state (``surging`` untouched) and, when the series was surging and
    the last closed bucket scored below ``end_threshold``, the ``ended`` transition (its
    ``trigger_event_ids`` empty: ``observe`` fills in the event that closed the bucket).
    """
    p = config.model_params
    skipped = index - state.bucket - 1
    stats, _ = model.step(p, state.stats, state.count, state.bucket_minute(config), lift)
    closing = _closing(state, stats, skipped, config) if state.surging else None
    if skipped:
        stats = model.skip(p, stats, (state.bucket + 1) * config.bucket_minutes, skipped)
    return SeriesState(bucket=index, packed=_encode(stats), surging=state.surging), closing


def _closing(
    state: SeriesState, stats: model.State, skipped: int, config: IntentConfig
) -> Transition | None:
    """The ``ended`` transition if the last closed bucket fell below the end threshold."""
    if skipped == 0:
        score, observed, level = state.score, state.count, state.baseline(config)
    else:  # the last closed bucket was empty: score 0
        minute = (state.bucket + skipped) * config.bucket_minutes
        score, observed = 0.0, 0.0
        level, _, _ = model.expected(config.model_params, stats, minute)
    if score >= config.end_threshold:
        return None
    return Transition("ended", score, level, observed, ())


def _count(
    state: SeriesState, weight: float, event_id: str, config: IntentConfig, lift: float
) -> SeriesState:
    count = state.count + float(weight)
    triggers = (*state.triggers, event_id)[-config.max_trigger_ids :]
    score = model.score_of(
        config.model_params, state.stats, count, state.bucket_minute(config), lift
    )
    return state.model_copy(update={"count": count, "score": score, "triggers": triggers})


def _qualifies(state: SeriesState, config: IntentConfig, continuing: bool = False) -> bool:
    """Surge-worthy bucket; the refractory period only stops a *new* surge."""
    stats = state.stats
    return (
        state.score >= config.surge_threshold
        and state.count >= config.min_observed
        and stats[10] >= config.warmup_buckets
        and (continuing or stats[9] == 0.0)
    )


def _started(state: SeriesState, config: IntentConfig, lift: float) -> Transition:
    baseline = state.baseline(config) * lift
    return Transition("started", state.score, baseline, state.count, state.triggers)
