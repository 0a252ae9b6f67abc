"""The relationship score (0-100) from email and meeting patterns, and its trend.

Computed at a day ``at`` from the ``relationship_days`` buckets of the ``window`` days up
to it (days d with 0 <= at - d < window), with these components, each between 0 and 1:

- ``two_way``: balance of the conversation, min(sent, received) / max(sent, received):
  1 when we write as much as they do, 0 when only one side writes;
- ``replies``: replies received / ``replies_for_full``, at most 1;
- ``meetings``: meetings held / ``meetings_for_full``, at most 1;
- ``contacts``: distinct people of the account who wrote to us or met us /
  ``contacts_for_full``, at most 1;
- ``recency``: 1 - (days since the last two-way touch, an inbound email or a meeting) /
  ``window``, at least 0; 0 without such a touch.

score = 100 * sum(weight * component) / sum(weights), rounded to 1 decimal; ``components``
reports each part in points of that score. The trend compares the score at the clock's
day with the score ``trend_days`` earlier, computed from the same buckets (which is why
they are kept for ``window + trend_days`` days).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date

from services.funnel.config import FunnelConfig, RelationshipConfig
from services.funnel.scores import RelationshipScore, Trend, relationship_result
from services.funnel.state import (
    MAX_DAY_CONTACTS,
    MAX_RELATIONSHIP_DAYS,
    RelationshipDay,
    days_before,
    days_between,
    with_day,
)

_COMPONENTS = ("two_way", "replies", "meetings", "contacts", "recency")


@dataclass(frozen=True, slots=True)
class Touch:
    """What one email or meeting adds to its day's bucket."""

    sent: int = 0
    received: int = 0
    replies: int = 0
    meetings: int = 0
    contacts: tuple[str, ...] = ()  # contact keys


def with_touch(
    days: tuple[RelationshipDay, ...], day: date, today: date, touch: Touch, config: FunnelConfig
) -> tuple[RelationshipDay, ...]:
    """``days`` with ``touch`` added to ``day``'s bucket, buckets too old for a score dropped."""

    def add(bucket: RelationshipDay) -> RelationshipDay:
        contacts = set(bucket.contacts)
        for key in touch.contacts:
            if len(contacts) >= MAX_DAY_CONTACTS:
                break
            contacts.add(key)
        return RelationshipDay(
            bucket.day,
            sent=bucket.sent + touch.sent,
            received=bucket.received + touch.received,
            replies=bucket.replies + touch.replies,
            meetings=bucket.meetings + touch.meetings,
            contacts=tuple(sorted(contacts)),
        )

    settings = config.relationship
    keep_after = days_before(today, settings.window_days + settings.trend_days)
    return with_day(days, day, RelationshipDay, add, keep_after, MAX_RELATIONSHIP_DAYS)


@dataclass(slots=True)
class _Sums:
    """What the buckets of one window add up to."""

    sent: int = 0
    received: int = 0
    replies: int = 0
    meetings: int = 0
    contacts: set[str] = field(default_factory=set)
    last_touch: date | None = None  # the latest day with an inbound email or a meeting

    def add(self, bucket: RelationshipDay) -> None:
        self.sent += bucket.sent
        self.received += bucket.received
        self.replies += bucket.replies
        self.meetings += bucket.meetings
        self.contacts.update(bucket.contacts)
        if (bucket.received or bucket.meetings) and (
            self.last_touch is None or bucket.day > self.last_touch
        ):
            self.last_touch = bucket.day


def _window_sums(
    days: tuple[RelationshipDay, ...], ats: tuple[date, ...], window: int
) -> list[_Sums]:
    """The sums of the window ending at each day of ``ats``, in one pass over ``days``."""
    bounds = [(days_before(at, window), at, _Sums()) for at in ats]
    for bucket in days:
        day = bucket.day
        for after, at, total in bounds:
            if after < day <= at:
                total.add(bucket)
    return [total for _, _, total in bounds]


def _components(sums: _Sums, at: date, config: RelationshipConfig) -> dict[str, float]:
    most = max(sums.sent, sums.received)
    recency = 0.0
    if sums.last_touch is not None:
        recency = max(0.0, 1 - days_between(sums.last_touch, at) / config.window_days)
    return {
        "two_way": min(sums.sent, sums.received) / most if most else 0.0,
        "replies": min(1.0, sums.replies / config.replies_for_full),
        "meetings": min(1.0, sums.meetings / config.meetings_for_full),
        "contacts": min(1.0, len(sums.contacts) / config.contacts_for_full),
        "recency": recency,
    }


def _points(components: dict[str, float], config: RelationshipConfig) -> dict[str, float]:
    weights = config.weights
    total = math.fsum(getattr(weights, name) for name in _COMPONENTS)
    return {
        name: 100 * getattr(weights, name) * value / total for name, value in components.items()
    }


def relationship_score(
    days: tuple[RelationshipDay, ...], today: date, config: FunnelConfig
) -> RelationshipScore:
    """The score at ``today``, the score ``trend_days`` before and the trend between them."""
    settings = config.relationship
    if not days:  # most accounts: no conversation yet
        zeros = dict.fromkeys(sorted(_COMPONENTS), 0.0)
        return relationship_result(0.0, zeros, 0.0, "steady", settings.trend_days)
    earlier = days_before(today, settings.trend_days)
    sums_now, sums_before = _window_sums(days, (today, earlier), settings.window_days)
    now = _points(_components(sums_now, today, settings), settings)
    before = _points(_components(sums_before, earlier, settings), settings)
    score = round(math.fsum(now.values()), 1)
    previous = round(math.fsum(before.values()), 1)
    return relationship_result(
        score,
        {name: round(points, 1) for name, points in sorted(now.items())},
        previous,
        trend(score, previous, settings.trend_threshold),
        settings.trend_days,
    )


def trend(score: float, previous: float, threshold: float) -> Trend:
    """``improving`` / ``declining`` when the score moved by ``threshold`` points or more."""
    change = round(score - previous, 1)
    if change > 0 and change >= threshold:
        return "improving"
    if change < 0 and -change >= threshold:
        return "declining"
    return "steady"
