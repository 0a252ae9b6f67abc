"""The funnel's state of one account: immutable, bounded, and stored by the shell as JSON.

``AccountState`` is a frozen pydantic model. The rules never mutate one: they build the
next state with ``model_copy(update=...)`` and fresh containers, so an old state stays a
valid snapshot. ``model_dump_json`` / ``model_validate_json`` round-trip it exactly, which
is what makes crash recovery exact: a state read back from the database and a state kept
in memory give the same results for the same next events.

Every collection is bounded (see the ``MAX_*`` constants); ``open_opportunities`` is
bounded too, by refusing new ids past its limit rather than forgetting open ones.
No rule depends on the order of a mapping's keys, and mappings are sorted when a state is
validated, so a document whose keys were reordered in storage (PostgreSQL ``jsonb``) loads
to the same state and dumps to the same JSON. Order that matters is kept in tuples.
Times are event times (``occurred_at``); ``clock`` is the latest one seen, the account's
"now" for every window.
"""

from __future__ import annotations

import hashlib
import math
from datetime import datetime, timedelta
from typing import Literal, TypeVar

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, field_validator

from schemas.events import Stage
from services.funnel.fit import Firmographics, FitScore

MAX_CONTACTS = 250
MAX_RECENT_EVENT_IDS = 64
MAX_OPEN_OPPORTUNITIES = 200
MAX_CLOSED_OPPORTUNITIES = 100
MAX_SURGE_TOPICS = 50

CUSTOMER_STAGES: frozenset[Stage] = frozenset({Stage.WON, Stage.RETENTION, Stage.EXPANSION})

Tier = Literal[1, 2, 3]
OpportunityOutcome = Literal["won", "lost"]
_V = TypeVar("_V")


class _Frozen(BaseModel):
    # extra="ignore": a state written by a newer version stays readable by an older one.
    model_config = ConfigDict(frozen=True, extra="ignore")


class Counters(_Frozen):
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

    def plus(self, **increments: int) -> Counters:
        """A copy with the named counters increased."""
        update = {name: getattr(self, name) + by for name, by in increments.items()}
        return self.model_copy(update=update)


class ClosedOpportunity(_Frozen):
    """An opportunity won or lost, remembered so that a repeat of its close is a no-op."""

    id: str
    outcome: OpportunityOutcome


class AccountState(_Frozen):
    """Everything the funnel knows about one account (see the module docstring)."""

    domain: str
    first_seen_at: AwareDatetime
    clock: AwareDatetime
    recent_event_ids: tuple[str, ...] = ()

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
    contacts_seen: tuple[str, ...] = ()

    open_opportunities: dict[str, float] = Field(default_factory=dict)
    closed_opportunities: tuple[ClosedOpportunity, ...] = ()  # oldest first
    won_revenue: float = 0.0
    renewal_revenue: float = 0.0
    expansion_revenue: float = 0.0
    churned_at: AwareDatetime | None = None

    last_surge_at: AwareDatetime | None = None
    surge_topics: dict[str, AwareDatetime] = Field(default_factory=dict)

    @field_validator("last_activity_by_channel", "open_opportunities", "surge_topics")
    @classmethod
    def _sorted_by_key(cls, value: dict[str, _V]) -> dict[str, _V]:
        return dict(sorted(value.items()))

    @field_validator("stage_entered_at")
    @classmethod
    def _sorted_by_stage(cls, value: dict[Stage, datetime]) -> dict[Stage, datetime]:
        return dict(sorted(value.items(), key=lambda item: item[0].rank))

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


def contact_key(email: str) -> str:
    """What ``contacts_seen`` holds for a contact: a short hash, never the address itself."""
    return hashlib.sha256(email.strip().casefold().encode()).hexdigest()[:16]


def with_contacts(contacts: tuple[str, ...], emails: list[str]) -> tuple[str, ...]:
    """``contacts`` plus the keys of ``emails``, sorted; full at ``MAX_CONTACTS``."""
    seen = set(contacts)
    for email in emails:
        if len(seen) >= MAX_CONTACTS:
            break
        seen.add(contact_key(email))
    return contacts if len(seen) == len(contacts) else tuple(sorted(seen))


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
