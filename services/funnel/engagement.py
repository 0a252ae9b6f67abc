"""The engagement score: the account's weighted engagement within a window of days.

Each engagement event is one activity (see ``signals.activity_of``) counted in its UTC
day's bucket, under the role of the contact it names (the strongest role for a meeting).
At the clock's day ``today``, with ``window`` = ``config.engagement_score_window_days``:

    score = sum over the buckets of days d with 0 <= today - d < window, of
            count(activity, role) * weights[activity] * role_weights[role]

An event without a contact, or with a contact of unknown role, counts with multiplier 1.0.
The roles are those known when the event was recorded. ``contributions`` gives the points
of each activity; the score is their sum. Points are rounded to 2 decimals. ``counts``
keeps the window's events per bucket key, so that a new event, or a new day, is scored
without reading every bucket again (``plus_one``, ``moved_counts``).
"""

from __future__ import annotations

import math
from datetime import date

from services.funnel.config import UNKNOWN_ROLE, EngagementWeights, FunnelConfig
from services.funnel.scores import EngagementScore, engagement_result
from services.funnel.state import (
    MAX_ENGAGEMENT_DAYS,
    EngagementDay,
    days_before,
    with_day,
)


def count_key(activity: str, role: str) -> str:
    """The bucket key of ``activity`` by a contact of ``role``: bare when role is unknown."""
    return activity if role == UNKNOWN_ROLE else f"{activity}:{role}"


def with_activity(
    days: tuple[EngagementDay, ...],
    day: date,
    today: date,
    activity: str,
    role: str,
    config: FunnelConfig,
) -> tuple[EngagementDay, ...]:
    """``days`` with one ``activity`` by ``role`` on ``day``, older buckets dropped."""
    key = count_key(activity, role)

    def add(bucket: EngagementDay) -> EngagementDay:
        counts = {**bucket.counts, key: bucket.counts.get(key, 0) + 1}
        if len(counts) > len(bucket.counts):  # a new key: keep the keys sorted
            counts = dict(sorted(counts.items()))
        return EngagementDay(bucket.day, counts)

    window = config.engagement_score_window_days
    keep_after = days_before(today, window)
    return with_day(days, day, lambda d: EngagementDay(d, {}), add, keep_after, MAX_ENGAGEMENT_DAYS)


def engagement_score(
    days: tuple[EngagementDay, ...], today: date, config: FunnelConfig
) -> EngagementScore:
    """The engagement score at ``today`` (see the module docstring)."""
    return scored(window_counts(days, today, config), config)


def window_counts(
    days: tuple[EngagementDay, ...], today: date, config: FunnelConfig
) -> dict[str, int]:
    """The events per bucket key of the buckets within the window at ``today``."""
    after = days_before(today, config.engagement_score_window_days)
    totals: dict[str, int] = {}
    for bucket in days:
        if after < bucket.day <= today:
            for key, count in bucket.counts.items():
                totals[key] = totals.get(key, 0) + count
    return dict(sorted(totals.items()))


def moved_counts(
    counts: dict[str, int],
    days: tuple[EngagementDay, ...],
    since: date,
    today: date,
    config: FunnelConfig,
) -> dict[str, int]:
    """``counts`` of the window at ``since`` (from ``days``), moved on to ``today``.

    The buckets that left the window are subtracted: the counts are integers, so this is
    exactly ``window_counts(days, today)`` without reading every bucket again.
    """
    window = config.engagement_score_window_days
    left_after, left_until = days_before(since, window), days_before(today, window)
    moved = dict(counts)
    for bucket in days:  # oldest first
        if bucket.day > left_until:
            break
        if bucket.day > left_after:
            for key, count in bucket.counts.items():
                remaining = moved.get(key, 0) - count
                if remaining > 0:
                    moved[key] = remaining
                else:
                    moved.pop(key, None)
    return moved


def plus_one(counts: dict[str, int], key: str) -> dict[str, int]:
    """``counts`` with one more event of bucket key ``key``, keys sorted."""
    if key in counts:
        return {**counts, key: counts[key] + 1}
    return dict(sorted({**counts, key: 1}.items()))


def scored(counts: dict[str, int], config: FunnelConfig) -> EngagementScore:
    """The score of these events of the window, by bucket key (keys sorted).

    One pass over the keys, adding up the same terms in the same order as ``_points``
    (so the same sums to the last bit), rather than one pass per activity.
    """
    weights = config.engagement.weights
    multipliers = config.engagement.role_weights
    terms: dict[str, list[float]] = {}
    for key, count in counts.items():
        activity, _, role = key.partition(":")
        points = terms.setdefault(activity, [])
        if activity in _WEIGHTED:  # an activity of another version: no weight today
            points.append(count * getattr(weights, activity) * multipliers.get(role, 1.0))
    contributions = {a: round(math.fsum(terms[a]), 2) for a in sorted(terms)}
    return _result(contributions, counts, config)


def scored_one_more(score: EngagementScore, key: str, config: FunnelConfig) -> EngagementScore:
    """``score`` with one more event of bucket key ``key`` within its window: equal to
    ``scored(plus_one(score["counts"], key))``, recomputing only that activity's points."""
    counts = plus_one(score["counts"], key)
    activity = key.partition(":")[0]
    contributions = {**score["contributions"], activity: _points(counts, activity, config)}
    if len(contributions) > len(score["contributions"]):
        contributions = dict(sorted(contributions.items()))
    return _result(contributions, counts, config)


def _points(counts: dict[str, int], activity: str, config: FunnelConfig) -> float:
    """The points of ``activity``: its events by role, weighted (0 when not weighted)."""
    if activity not in _WEIGHTED:  # an activity of another version: no weight today
        return 0.0
    weight: float = getattr(config.engagement.weights, activity)
    multipliers = config.engagement.role_weights
    points = [
        count * weight * multipliers.get(role, 1.0)
        for key, count in counts.items()  # sorted: the same sum whichever way it is built
        for name, _, role in (key.partition(":"),)
        if name == activity
    ]
    return round(math.fsum(points), 2)


def _result(
    contributions: dict[str, float], counts: dict[str, int], config: FunnelConfig
) -> EngagementScore:
    return engagement_result(
        round(math.fsum(contributions.values()), 2),
        {a: p for a, p in contributions.items() if p > 0},
        counts,
        config.engagement_score_window_days,
    )


_WEIGHTED = frozenset(EngagementWeights.field_names())
