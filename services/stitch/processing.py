"""Visitor stitching, the pure core: one visitor's state and events in, new state and
attributed copies out. No I/O, no clock: every time is an event time.

Rules (``classify``):

- an event with an ``anonymous_id`` and no account is an *anonymous visit*: attributed at
  once when the visitor has identified (a copy keyed by the account), else kept pending;
- an *identification* names the account through strong evidence (``group_id``, a
  contact's ``email_domain``, or, when the sender gave no provenance, a contact or form
  event): the first one sets the visitor's account and ``identified_at`` and releases the
  pending events as attributed copies. A later identification as *another* account is only
  recorded (``last_identified_account``): re-attributing visits already counted by the
  funnel as one account's engagement would make both accounts' history disagree with what
  was published, so the first identification keeps the visitor;
- a *sighting* names the account through weaker evidence (IP ranges, ingest's memory of
  the visitor, an API write): the visitor's account is recorded, ``identified_at`` stays
  null (an anonymous visitor from that account: the de-anonymisation rate's denominator);
- our own copies (provenance ``stitched``), bot traffic and events without a visitor id
  are ignored: a copy is never stitched again.

A copy is the original event with the account, provenance ``stitched``, the
identification's confidence and a new ``event_id`` derived from the original one (a
UUIDv5), so a replay or a redelivery produces the same id and downstream consumers drop
the duplicate. It keeps the original ``occurred_at``.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Literal

from schemas.events import Event

Kind = Literal["anonymous", "identification", "sighting", "ignored"]

STITCHED = "stitched"
STRONG_PROVENANCES = frozenset({"group_id", "email_domain"})
# Without a provenance (older senders), these types name the account through a contact.
IDENTIFYING_TYPES = frozenset({"contact_identified", "form_submitted"})

_COPY_NAMESPACE = uuid.UUID("6f1f7a9e-3c1b-5d2a-9f4e-8b7c6d5e4f30")


@dataclass(frozen=True, slots=True)
class StitchLimits:
    """Bounds on what is kept per unidentified visitor."""

    max_pending: int = 200
    pending_window: timedelta = timedelta(days=90)


@dataclass(frozen=True, slots=True)
class VisitorState:
    """One ``visitors`` row."""

    anonymous_id: str
    first_seen_at: datetime
    last_seen_at: datetime
    account: str | None = None
    provenance: str | None = None
    confidence: float | None = None
    identified_at: datetime | None = None
    last_identified_account: str | None = None

    @property
    def identified(self) -> bool:
        return self.identified_at is not None and self.account is not None


@dataclass(frozen=True, slots=True)
class PendingEvent:
    """An anonymous event waiting for its visitor to identify."""

    event: Event

    @property
    def sort_key(self) -> tuple[datetime, str]:
        return (self.event.occurred_at, self.event.event_id)


@dataclass(frozen=True, slots=True)
class VisitorOutcome:
    """A visitor after a batch: the state to store, the pending events to keep (all of
    them, in time order), the copies to publish, and counts for the metrics."""

    state: VisitorState
    pending: tuple[PendingEvent, ...]
    copies: tuple[Event, ...] = ()
    newly_identified: bool = False
    attributed_from_pending: int = 0
    attributed_directly: int = 0
    stored_pending: int = 0
    pruned_pending: int = 0


def classify(event: Event) -> Kind:
    """What an event means for its visitor (see the module docstring)."""
    if not event.anonymous_id or event.is_bot or event.account_provenance == STITCHED:
        return "ignored"
    if event.account is None:
        return "anonymous"
    provenance = event.account_provenance
    if provenance in STRONG_PROVENANCES:
        return "identification"
    if provenance is None and event.type in IDENTIFYING_TYPES:
        return "identification"
    return "sighting"


def concerns_a_visitor(event: Event) -> bool:
    """Whether stitching does anything with ``event`` (the consumer passes over the rest
    without claiming them)."""
    return classify(event) != "ignored"


def visitor_events(events: Iterable[Event]) -> dict[str, list[Event]]:
    """The events that concern a visitor, per visitor id, in the given order."""
    found: dict[str, list[Event]] = {}
    for event in events:
        if classify(event) != "ignored" and event.anonymous_id:
            found.setdefault(event.anonymous_id, []).append(event)
    return found


def stitched_event_id(original_event_id: str) -> str:
    """The copy's id: the same for the same original, whoever computes it, whenever."""
    return f"stitched-{uuid.uuid5(_COPY_NAMESPACE, original_event_id)}"


def stitched_copy(event: Event, account: str, confidence: float | None) -> Event:
    """The event attributed to ``account`` downstream (same facts, new id, provenance)."""
    return event.model_copy(
        update={
            "event_id": stitched_event_id(event.event_id),
            "account": account,
            "account_provenance": STITCHED,
            "account_confidence": confidence,
        }
    )


@dataclass(slots=True)
class _Visitor:
    """Working copy while one visitor's events are applied."""

    state: VisitorState
    pending: dict[str, PendingEvent]
    copies: list[Event] = field(default_factory=list)
    newly_identified: bool = False
    from_pending: int = 0
    directly: int = 0
    stored: int = 0
    pruned: int = 0


def apply_visitor(
    state: VisitorState | None,
    pending: Sequence[PendingEvent],
    events: Sequence[Event],
    limits: StitchLimits | None = None,
) -> VisitorOutcome:
    """Apply one visitor's events, in order, to its stored state and pending events.

    ``state`` None: a visitor never seen. Events that do not concern the visitor are
    skipped, so callers may pass a mixed list.
    """
    limits = limits or StitchLimits()
    relevant = [e for e in events if classify(e) != "ignored" and e.anonymous_id]
    if state is None:
        if not relevant:
            raise ValueError("a new visitor needs at least one of its events")
        first = relevant[0]
        assert first.anonymous_id is not None
        state = VisitorState(first.anonymous_id, first.occurred_at, first.occurred_at)
    work = _Visitor(state, {p.event.event_id: p for p in pending})
    for event in relevant:
        if event.anonymous_id != state.anonymous_id:
            continue
        work.state = _seen(work.state, event.occurred_at)
        kind = classify(event)
        if kind == "anonymous":
            _visit(work, event, limits)
        elif kind == "identification":
            _identify(work, event, limits)
        else:
            _sight(work, event)
    kept = tuple(sorted(work.pending.values(), key=lambda p: p.sort_key))
    return VisitorOutcome(
        state=work.state,
        pending=kept,
        copies=tuple(work.copies),
        newly_identified=work.newly_identified,
        attributed_from_pending=work.from_pending,
        attributed_directly=work.directly,
        stored_pending=work.stored,
        pruned_pending=work.pruned,
    )


def _seen(state: VisitorState, at: datetime) -> VisitorState:
    return replace(
        state, first_seen_at=min(state.first_seen_at, at), last_seen_at=max(state.last_seen_at, at)
    )


def _visit(work: _Visitor, event: Event, limits: StitchLimits) -> None:
    state = work.state
    if state.identified and state.account is not None:
        work.copies.append(stitched_copy(event, state.account, state.confidence))
        work.directly += 1
        return
    if event.event_id in work.pending:
        return  # the same event again (a re-publish under the same id): kept once
    work.pending[event.event_id] = PendingEvent(event)
    work.stored += 1
    _prune(work, limits)


def _identify(work: _Visitor, event: Event, limits: StitchLimits) -> None:
    state = work.state
    account = event.account
    assert account is not None
    if state.identified:
        earliest = state.identified_at
        if account == state.account and earliest is not None:
            earliest = min(earliest, event.occurred_at)  # independent of arrival order
        work.state = replace(state, identified_at=earliest, last_identified_account=account)
        return
    work.state = replace(
        state,
        account=account,
        provenance=event.account_provenance,
        confidence=event.account_confidence,
        identified_at=event.occurred_at,
        last_identified_account=account,
    )
    work.newly_identified = True
    _prune(work, limits)
    for waiting in sorted(work.pending.values(), key=lambda p: p.sort_key):
        work.copies.append(stitched_copy(waiting.event, account, event.account_confidence))
    work.from_pending += len(work.pending)
    work.pending.clear()


def _sight(work: _Visitor, event: Event) -> None:
    state = work.state
    if state.account is None:  # the first account named wins until an identification
        work.state = replace(
            state,
            account=event.account,
            provenance=event.account_provenance,
            confidence=event.account_confidence,
        )


def _prune(work: _Visitor, limits: StitchLimits) -> None:
    """Keep the ``max_pending`` most recent events within the window of the newest one."""
    cutoff = work.state.last_seen_at - limits.pending_window
    ordered = sorted(work.pending.values(), key=lambda p: p.sort_key, reverse=True)
    keep = [p for p in ordered if p.event.occurred_at >= cutoff][: limits.max_pending]
    if len(keep) != len(ordered):
        work.pruned += len(ordered) - len(keep)
        work.pending = {p.event.event_id: p for p in keep}
