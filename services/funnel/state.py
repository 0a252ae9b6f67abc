"""The funnel's state of one account: immutable, bounded, and stored by the shell as JSON.

``AccountState`` is a frozen pydantic dataclass (``services.kit.records``: validated and
dumped as a model is, its attributes read as a plain class's). The rules never mutate one:
they build the next state with ``model_copy(update=...)`` and fresh containers, so an old
state stays a valid snapshot. ``model_dump_json`` / ``model_validate_json`` round-trip it
exactly, which is what makes crash recovery exact: a state read back from the database and
a state kept in memory give the same results for the same next events.

Every collection is bounded (see the ``MAX_*`` constants); ``open_opportunities`` is
bounded too, by refusing new ids past its limit rather than forgetting open ones.
No rule depends on the order of a mapping's keys, and mappings are sorted when a state is
validated, so a document whose keys were reordered in storage (PostgreSQL ``jsonb``) loads
to the same state and dumps to the same JSON. Order that matters is kept in tuples.
Times are event times (``occurred_at``); ``clock`` is the latest one seen, the account's
"now" for every window. The scores' windows count whole UTC days back from the clock's day
(``today``), so that their inputs can be kept as small daily buckets rather than per-event
lists: ``engagement_days`` and ``relationship_days`` hold only days with activity, oldest
first, and only as far back as a score can look. ``scores`` holds the scores computed from
them at the clock's day, refreshed with every signal recorded (see ``scoring``); the small
records rebuilt on every page view are tuples and typed dicts rather than models (cheaper),
put in canonical order on validation like the mappings.

States written before contacts had roles (``contacts_seen``: a tuple of contact keys) load
with those contacts of unknown role, never engaged. States written before renewals were
counted load with one renewal if they recorded renewal revenue, else none (a renewal
without an amount left no trace); those written before transitions were numbered start
numbering from 0.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Callable
from datetime import UTC, date, datetime, timedelta
from typing import Any, Literal, NamedTuple, TypeVar

from pydantic import AwareDatetime, Field, field_validator, model_validator
from pydantic.dataclasses import dataclass
from typing_extensions import TypedDict

from schemas import kpis
from schemas.events import Stage
from services.funnel.fit import Firmographics, FitScore
from services.funnel.scores import Scores, canonical, empty_scores
from services.kit.records import RECORD_CONFIG, Frozen

MAX_CONTACTS = 250
MAX_DAY_CONTACTS = 25
MAX_ENGAGEMENT_DAYS = 366  # the engagement window is at most 365 days
MAX_RELATIONSHIP_DAYS = 731  # its window plus its trend period, each at most 365 days
MAX_VIEW_THROUGH_CAMPAIGNS = 50
MAX_RECENT_EVENT_KEYS = 16
MAX_OPEN_OPPORTUNITIES = 200
MAX_CLOSED_OPPORTUNITIES = 100
MAX_SURGE_TOPICS = 50

CUSTOMER_STAGES: frozenset[Stage] = kpis.CUSTOMER_STAGES

Tier = Literal[1, 2, 3]
OpportunityOutcome = Literal["won", "lost"]
_V = TypeVar("_V")


@dataclass(frozen=True, config=RECORD_CONFIG)
class Counters(Frozen):
    """Signal counts since the account was first seen (bots excluded)."""

    visits: int = 0
    high_value_visits: int = 0
    view_through_visits: int = 0
    ad_impressions: int = 0
    ad_clicks: int = 0
    chats: int = 0
    emails: int = 0
    emails_sent: int = 0
    meetings: int = 0
    forms: int = 0
    view_through_conversions: int = 0

    def plus(self, **increments: int) -> Counters:
        """A copy with the named counters increased."""
        update = {name: getattr(self, name) + by for name, by in increments.items()}
        return self.model_copy(update=update)


@dataclass(frozen=True, config=RECORD_CONFIG)
class Contact(Frozen):
    """A person of the account, known by the key of their address (``contact_key``)."""

    role: str = "unknown"
    engaged_on: date | None = None  # the UTC day of their latest engagement


class EngagementDay(NamedTuple):
    """One day's engagement: events per ``activity`` or ``activity:role`` (role not unknown),
    keys sorted. A tuple, stored as a JSON array: cheap to rebuild on every page view."""

    day: date
    counts: dict[str, int]


class RelationshipDay(NamedTuple):
    """One day's conversation with the account, by email and in meetings (a JSON array).

    ``sent`` / ``received``: emails out (``email_sent`` or ``email_replied``, outbound) and
    in (inbound); ``replies``: inbound ``email_replied``; ``contacts``: keys of the account's
    people who wrote to us or met us that day (sorted, at most ``MAX_DAY_CONTACTS``).
    """

    day: date
    sent: int = 0
    received: int = 0
    replies: int = 0
    meetings: int = 0
    contacts: tuple[str, ...] = ()


class ViewThrough(TypedDict):
    """View-through visits and conversions attributed to one campaign (a plain dict)."""

    visits: int
    conversions: int


def view_through_counts(visits: int, conversions: int) -> ViewThrough:
    """A ``ViewThrough`` in canonical key order."""
    return {"visits": visits, "conversions": conversions}


@dataclass(frozen=True, config=RECORD_CONFIG)
class ClosedOpportunity(Frozen):
    """An opportunity won or lost, remembered so that a repeat of its close is a no-op."""

    id: str
    outcome: OpportunityOutcome


@dataclass(frozen=True, config=RECORD_CONFIG)
class AccountState(Frozen):
    """Everything the funnel knows about one account (see the module docstring)."""

    domain: str
    first_seen_at: AwareDatetime
    clock: AwareDatetime
    # Short digests of the last events applied (see ``event_key``): a repeat of one of them
    # is a no-op even without the shell's de-duplication (e.g. in a replay of a file).
    recent_event_keys: tuple[str, ...] = ()

    firmographics: Firmographics = Firmographics()
    explicit_target: bool | None = None
    fit: FitScore = FitScore()
    is_target: bool = False

    stage: Stage | None = None
    stage_since: AwareDatetime | None = None
    stage_rule: str | None = None
    stage_cause_event_ids: tuple[str, ...] = ()
    furthest_stage_rank: int = -1
    stage_entered_at: dict[Stage, AwareDatetime] = Field(default_factory=dict)
    # Stage and tier changes made so far: the number of the latest one. The changes of one
    # moment have ids that sort at random, and this number orders them in storage.
    transitions_made: int = 0

    tier: Tier | None = None
    tier_since: AwareDatetime | None = None
    tier_rule: str | None = None

    first_engaged_at: AwareDatetime | None = None
    last_engaged_at: AwareDatetime | None = None
    last_activity_at: AwareDatetime | None = None
    last_activity_by_channel: dict[str, AwareDatetime] = Field(default_factory=dict)
    last_impression_at: AwareDatetime | None = None
    last_ad_click_at: AwareDatetime | None = None
    last_high_value_visit_at: AwareDatetime | None = None
    counters: Counters = Counters()
    contacts: dict[str, Contact] = Field(default_factory=dict)

    last_impression_campaign: str | None = None
    last_view_through_at: AwareDatetime | None = None
    last_view_through_campaign: str | None = None
    view_through: dict[str, ViewThrough] = Field(default_factory=dict)  # by campaign

    engagement_days: tuple[EngagementDay, ...] = ()  # oldest first
    relationship_days: tuple[RelationshipDay, ...] = ()  # oldest first
    scores: Scores = Field(default_factory=empty_scores)

    open_opportunities: dict[str, float] = Field(default_factory=dict)
    closed_opportunities: tuple[ClosedOpportunity, ...] = ()  # oldest first
    won_revenue: float = 0.0
    renewal_revenue: float = 0.0
    renewals: int = 0  # subscription_renewed events applied: deal cycles beyond the first
    expansion_revenue: float = 0.0
    churned_at: AwareDatetime | None = None

    last_surge_at: AwareDatetime | None = None
    surge_topics: dict[str, AwareDatetime] = Field(default_factory=dict)

    @model_validator(mode="before")
    @classmethod
    def _contacts_from_old_states(cls, data: Any) -> Any:
        if isinstance(data, dict) and "contacts_seen" in data and "contacts" not in data:
            seen = data["contacts_seen"]
            keys = seen if isinstance(seen, list | tuple) else ()
            return {**data, "contacts": {str(key): {} for key in keys}}
        return data

    @model_validator(mode="before")
    @classmethod
    def _renewals_from_old_states(cls, data: Any) -> Any:
        # Only a renewal adds renewal revenue: a state that has some renewed at least once.
        if isinstance(data, dict) and "renewals" not in data:
            revenue = data.get("renewal_revenue")
            if isinstance(revenue, int | float) and revenue > 0:
                return {**data, "renewals": 1}
        return data

    @field_validator("last_activity_by_channel", "open_opportunities", "surge_topics", "contacts")
    @classmethod
    def _sorted_by_key(cls, value: dict[str, _V]) -> dict[str, _V]:
        return dict(sorted(value.items()))

    @field_validator("view_through")
    @classmethod
    def _canonical_view_through(cls, value: dict[str, ViewThrough]) -> dict[str, ViewThrough]:
        return {
            campaign: view_through_counts(counts["visits"], counts["conversions"])
            for campaign, counts in sorted(value.items())
        }

    @field_validator("scores")
    @classmethod
    def _canonical_scores(cls, value: Scores) -> Scores:
        return canonical(value)

    @field_validator("engagement_days")
    @classmethod
    def _sorted_counts(cls, value: tuple[EngagementDay, ...]) -> tuple[EngagementDay, ...]:
        return tuple(EngagementDay(d.day, dict(sorted(d.counts.items()))) for d in value)

    @field_validator("stage_entered_at")
    @classmethod
    def _sorted_by_stage(cls, value: dict[Stage, datetime]) -> dict[Stage, datetime]:
        return dict(sorted(value.items(), key=lambda item: item[0].rank))

    @property
    def today(self) -> date:
        """The UTC day of ``clock``: the last day of every score's window."""
        return day_of(self.clock)

    @property
    def is_customer(self) -> bool:
        return self.stage in CUSTOMER_STAGES

    @property
    def pipeline(self) -> float:
        """Total amount of the open opportunities."""
        return math.fsum(self.open_opportunities.values())  # exact, whatever the key order

    def outcome_of(self, opportunity_id: str) -> OpportunityOutcome | None:
        """How ``opportunity_id`` was closed, if it is among the recently closed ones."""
        for closed in self.closed_opportunities:
            if closed.id == opportunity_id:
                return closed.outcome
        return None

    def engaged_within(self, days: int) -> bool:
        """Whether the last engagement is at most ``days`` before ``clock``."""
        return within(self.last_engaged_at, self.clock, days)

    def surged_within(self, days: int) -> bool:
        """Whether a surge is active, or one was seen at most ``days`` before ``clock``."""
        return bool(self.surge_topics) or within(self.last_surge_at, self.clock, days)


def new_account_state(domain: str, at: datetime, fit: FitScore) -> AccountState:
    """The state of an account first seen at ``at``: not a target, no stage."""
    return AccountState(domain=domain, first_seen_at=at, clock=at, fit=fit)


def event_key(event_id: str) -> str:
    """What ``recent_event_keys`` holds for an event id: 48 bits of its BLAKE2b digest,
    ample to tell apart 16 ids, at a tenth of an id's size in every stored state."""
    return hashlib.blake2b(event_id.encode(), digest_size=6).hexdigest()


def contact_key(email: str) -> str:
    """What ``contacts`` is keyed by: a short hash, never the address itself."""
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:16]


def day_of(moment: datetime) -> date:
    """The UTC day of ``moment`` (the same instant gives the same day whatever its offset)."""
    return moment.astimezone(UTC).date()


def days_between(earlier: date, later: date) -> int:
    """Whole days from ``earlier`` to ``later`` (negative when ``earlier`` is after)."""
    return (later - earlier).days


def days_before(day: date, days: int) -> date:
    """``days`` days before ``day``, never before the first representable day."""
    return date.fromordinal(max(1, day.toordinal() - days))


_Day = TypeVar("_Day", EngagementDay, RelationshipDay)


def with_day(
    days: tuple[_Day, ...],
    day: date,
    new: Callable[[date], _Day],
    change: Callable[[_Day], _Day],
    keep_after: date,
    limit: int,
) -> tuple[_Day, ...]:
    """``days`` with ``day``'s bucket changed (created by ``new`` if missing), oldest first.

    When ``day`` is on or before ``keep_after`` (no score can see it) nothing changes;
    otherwise the buckets on or before ``keep_after`` are dropped, and at most the ``limit``
    most recent buckets are kept.
    """
    if day <= keep_after:
        return days
    kept = list(days)
    if kept and kept[0].day <= keep_after:  # only old buckets at the front: drop them
        kept = [bucket for bucket in kept if bucket.day > keep_after]
    # Most events are of the latest day: look for it from the end.
    for index in range(len(kept) - 1, -1, -1):
        if kept[index].day == day:
            kept[index] = change(kept[index])
            return tuple(kept)
        if kept[index].day < day:
            kept.insert(index + 1, change(new(day)))
            return tuple(kept[-limit:])
    kept.insert(0, change(new(day)))
    return tuple(kept[-limit:])


def sorted_by_key(mapping: dict[str, _V]) -> dict[str, _V]:
    """``mapping`` in key order: the canonical order of the state's mappings."""
    return dict(sorted(mapping.items()))


def bounded_append(items: tuple[str, ...], item: str, limit: int) -> tuple[str, ...]:
    """``items`` plus ``item`` at the end, keeping only the ``limit`` most recent."""
    return (*items, item)[-limit:]


def latest(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None or moment > current else current


def earliest(current: datetime | None, moment: datetime) -> datetime:
    return moment if current is None or moment < current else current


def within(moment: datetime | None, now: datetime, days: int) -> bool:
    """Whether ``moment`` is known and at most ``days`` before ``now``."""
    return moment is not None and now - moment <= timedelta(days=days)
