r"""Online surge detector for one series (one account's activity on one topic).

Pure and O(1) per event: no clock, no I/O, constant-size state.

Buckets
    Time is cut into buckets of ``bucket_minutes`` anchored at the Unix epoch (UTC). The
    state holds the open bucket's weighted count ``x``. Events of an earlier bucket than
    the open one arrive too late to change a closed bucket and are ignored (this also keeps
    back-dated replays, e.g. visits attributed after de-anonymisation, from faking a burst).

Baseline: exponentially weighted mean and variance of past bucket counts
    The closed bucket of age ``j`` (0 = the newest) weighs ``d**j``, with the decay per
    bucket ``d = 0.5 ** (1 / half_life_buckets)``. Over the ``n`` buckets seen, normalised
    by ``W = (1 - d) * sum(d**j) = 1 - d**n`` and with ``a = 1 - d``, the moments are::

        S1 = a * sum(d**j * x_j),   S2 = a * sum(d**j * x_j**2)
        mean = S1 / W,              var = S2 / W - mean**2       (both 0 while n = 0)

    The state keeps ``mean``, ``var`` and ``n``; ``W``, ``S1`` and ``S2`` follow from
    them. Unlike a zero-started EWMA (or West's form around a lagging mean), this has no
    start-up bias: a series that always had 5 has mean 5 and variance 0 from bucket one.
    Closing a bucket with count ``x``::

        S1' = d * S1 + a * x,   S2' = d * S2 + a * x**2,   n' = n + 1

    Sparse series are mostly empty buckets. ``k`` empty buckets in a row only age the
    sums, so they are folded in closed form instead of a loop over ``k``::

        S1' = d**k * S1,   S2' = d**k * S2,   n' = n + k

    A topic series of a known account may be created with ``n`` > 0 (see
    ``SeriesState.empty``): it then starts from "n buckets observed, all zero".

Score
    The open bucket is compared with the baseline of the closed ones::

        z = (x - mean) / sqrt(max(var, mean) + variance_prior)
        score = 100 * (1 - exp(-max(z, 0) / z_scale))           in [0, 100)

    ``max(var, mean)`` is a Poisson-like floor (counts vary at least as much as their
    mean); ``variance_prior`` keeps the spread positive for a series without history, so
    a first visit scores low. With the defaults (z_scale 8) a score of 60 needs z ~ 7.3.

Transitions (hysteresis)
    started: not surging, and score >= surge_threshold, x >= min_observed and
        n >= warmup_buckets (a brand-new series has no baseline to surge above).
        Within one bucket the score only grows, so a bucket starts at most one surge.
    ended: surging, and the bucket that just closed scored below end_threshold. This is
        evaluated when an event opens a later bucket; if buckets were skipped, the last
        closed bucket was empty and scored 0. If that same event already qualifies the new
        bucket for a surge, the surge simply continues (no ended + started pair).
    A started transition carries the last ``max_trigger_ids`` event ids of its bucket, an
    ended one the id of the event that closed the bucket. A series that falls silent stays
    surging until its next event: ending it on a timer is the caller's business.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

from services.intent.config import IntentConfig

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


class SeriesState(BaseModel):
    """Constant-size state of one series; persist it with ``to_json`` / ``to_dict``."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    bucket_start: AwareDatetime = Field(description="Start of the open bucket.")
    count: float = Field(default=0.0, ge=0, description="Weighted count of the open bucket.")
    mean: float = Field(default=0.0, ge=0, description="EW mean of closed bucket counts.")
    var: float = Field(default=0.0, ge=0, description="EW variance of closed bucket counts.")
    buckets: int = Field(default=0, ge=0, description="Closed buckets in the baseline.")
    surging: bool = False
    score: float = Field(default=0.0, ge=0, le=100, description="Score of the open bucket.")
    triggers: tuple[str, ...] = Field(default=(), description="Last event ids of the bucket.")

    @classmethod
    def empty(cls, bucket_start: datetime, buckets: int = 0) -> SeriesState:
        """A series with nothing counted yet, after ``buckets`` observed empty buckets."""
        return cls(bucket_start=bucket_start, buckets=buckets)

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (datetimes as ISO strings)."""
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


# --- the math -----------------------------------------------------------------------------


def ewma_update(
    mean: float, var: float, buckets: int, x: float, decay: float
) -> tuple[float, float]:
    """Mean and variance after closing one more bucket, with count ``x``."""
    s1, s2 = _moments(mean, var, buckets, decay)
    alpha = 1.0 - decay
    return _stats(_weight(buckets + 1, decay), decay * s1 + alpha * x, decay * s2 + alpha * x * x)


def ewma_skip(mean: float, var: float, buckets: int, k: int, decay: float) -> tuple[float, float]:
    """Mean and variance after ``k`` more empty buckets (closed form, no loop)."""
    s1, s2 = _moments(mean, var, buckets, decay)
    aged = decay**k
    return _stats(_weight(buckets + k, decay), aged * s1, aged * s2)


def _weight(buckets: int, decay: float) -> float:
    """``W = 1 - d**n``, precise also when it is tiny."""
    return -math.expm1(buckets * math.log(decay))


def _moments(mean: float, var: float, buckets: int, decay: float) -> tuple[float, float]:
    """``(S1, S2)`` of a baseline of ``buckets`` buckets."""
    total = _weight(buckets, decay)
    return total * mean, total * (var + mean * mean)


def _stats(total: float, s1: float, s2: float) -> tuple[float, float]:
    """``(mean, var)`` from the weight and the moments."""
    if total <= 0.0:
        return 0.0, 0.0
    mean = s1 / total
    return mean, max(s2 / total - mean * mean, 0.0)


def surge_score(observed: float, mean: float, var: float, config: IntentConfig) -> float:
    """0-100: how far ``observed`` lies above a baseline of (mean, var)."""
    z = (observed - mean) / math.sqrt(max(var, mean) + config.variance_prior)
    return 100.0 * (1.0 - math.exp(-max(z, 0.0) / config.z_scale))


def bucket_index(at: datetime, config: IntentConfig) -> int:
    return (at - EPOCH) // timedelta(minutes=config.bucket_minutes)


def bucket_start(index: int, config: IntentConfig) -> datetime:
    return EPOCH + index * timedelta(minutes=config.bucket_minutes)


# --- the detector -------------------------------------------------------------------------


def observe(
    state: SeriesState | None, at: datetime, weight: float, event_id: str, config: IntentConfig
) -> tuple[SeriesState, Transition | None]:
    """Count one event of ``weight`` at ``at``; the new state and any transition.

    A late event (earlier bucket than the open one) returns ``state`` itself, unchanged.
    """
    index = bucket_index(at, config)
    if state is None:
        state = SeriesState.empty(bucket_start(index, config))
    current = bucket_index(state.bucket_start, config)
    if index < current:
        return state, None
    closing: Transition | None = None
    if index > current:
        state, closing = advance(state, index, config)
    state = _count(state, weight, event_id, config)
    if closing is not None:
        if _qualifies(state, config):
            return state, None
        ended = replace(closing, trigger_event_ids=(event_id,))
        return state.model_copy(update={"surging": False}), ended
    if not state.surging and _qualifies(state, config):
        return state.model_copy(update={"surging": True}), _started(state)
    return state, None


def advance(
    state: SeriesState, index: int, config: IntentConfig
) -> tuple[SeriesState, Transition | None]:
    """Close the open bucket and skip to bucket ``index`` (> the open one).

    Returns the rolled state (``surging`` untouched) and, when the series was surging and
    the last closed bucket scored below ``end_threshold``, the ``ended`` transition (its
    ``trigger_event_ids`` empty: ``observe`` fills in the event that closed the bucket).
    """
    skipped = index - bucket_index(state.bucket_start, config) - 1
    mean, var = ewma_update(state.mean, state.var, state.buckets, state.count, config.decay)
    closed = state.buckets + 1
    closing = _closing(state, mean, var, skipped, config) if state.surging else None
    mean, var = ewma_skip(mean, var, closed, skipped, config.decay)
    rolled = SeriesState(
        bucket_start=bucket_start(index, config),
        mean=mean,
        var=var,
        buckets=closed + skipped,
        surging=state.surging,
    )
    return rolled, closing


def _closing(
    state: SeriesState, mean: float, var: float, skipped: int, config: IntentConfig
) -> Transition | None:
    """The ``ended`` transition if the last closed bucket fell below the end threshold.

    ``mean`` and ``var`` are the baseline with the open bucket of ``state`` folded in.
    """
    if skipped == 0:
        score, observed, level = state.score, state.count, state.mean
    else:  # the last closed bucket was empty: score 0 against its own baseline
        score, observed = 0.0, 0.0
        level, _ = ewma_skip(mean, var, state.buckets + 1, skipped - 1, config.decay)
    if score >= config.end_threshold:
        return None
    return Transition("ended", score, level, observed, ())


def _count(state: SeriesState, weight: float, event_id: str, config: IntentConfig) -> SeriesState:
    count = state.count + float(weight)
    triggers = (*state.triggers, event_id)[-config.max_trigger_ids :]
    score = surge_score(count, state.mean, state.var, config)
    return state.model_copy(update={"count": count, "score": score, "triggers": triggers})


def _qualifies(state: SeriesState, config: IntentConfig) -> bool:
    return (
        state.score >= config.surge_threshold
        and state.count >= config.min_observed
        and state.buckets >= config.warmup_buckets
    )


def _started(state: SeriesState) -> Transition:
    return Transition("started", state.score, state.mean, state.count, state.triggers)
