"""Visitor stitching, the pure core: which events wait, which are attributed, to whom, once."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from schemas.events import ContactIdentified, Event, FormSubmitted, PageViewed, SurgeStarted
from services.stitch.processing import (
    PendingEvent,
    StitchLimits,
    VisitorOutcome,
    VisitorState,
    apply_visitor,
    classify,
    concerns_a_visitor,
    stitched_copy,
    stitched_event_id,
    visitor_events,
)

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
VISITOR = "anon-7"


def page(n: int, at: datetime, visitor: str = VISITOR, **fields: object) -> PageViewed:
    return PageViewed(
        event_id=f"pv-{n}", occurred_at=at, received_at=at, anonymous_id=visitor,
        source="web", url=f"https://vendor.io/p{n}", **fields,
    )  # fmt: skip


def identify(
    n: int,
    at: datetime,
    account: str,
    confidence: float | None = 0.95,
    provenance: str | None = "email_domain",
) -> ContactIdentified:
    return ContactIdentified(
        event_id=f"id-{n}", occurred_at=at, received_at=at, anonymous_id=VISITOR,
        source="web", account=account, account_provenance=provenance,
        account_confidence=confidence, contact_email=f"jo@{account}",
    )  # fmt: skip


def run(events: Sequence[Event], limits: StitchLimits | None = None) -> VisitorOutcome:
    """The events applied one batch each, state and pending carried over (as stored)."""
    state: VisitorState | None = None
    pending: tuple[PendingEvent, ...] = ()
    copies: list[Event] = []
    identified = 0
    for event in events:
        outcome = apply_visitor(state, pending, [event], limits)
        state, pending = outcome.state, outcome.pending
        copies += outcome.copies
        identified += outcome.newly_identified
    assert state is not None
    return VisitorOutcome(state, pending, tuple(copies), newly_identified=identified == 1)


def test_visits_wait_until_the_visitor_identifies_then_are_attributed() -> None:
    visits = [page(1, T0), page(2, T0 + timedelta(minutes=3))]
    waiting = run(visits)
    assert waiting.copies == ()
    assert [p.event.event_id for p in waiting.pending] == ["pv-1", "pv-2"]
    assert waiting.state.account is None and waiting.state.identified_at is None

    done = run([*visits, identify(1, T0 + timedelta(hours=1), "acme.com")])
    assert done.pending == ()
    assert [(c.account, c.account_provenance, c.account_confidence) for c in done.copies] == [
        ("acme.com", "stitched", 0.95),
        ("acme.com", "stitched", 0.95),
    ]
    # the copies keep the facts and the event time, under new ids
    assert [c.occurred_at for c in done.copies] == [T0, T0 + timedelta(minutes=3)]
    assert [getattr(c, "url", None) for c in done.copies] == [
        "https://vendor.io/p1",
        "https://vendor.io/p2",
    ]
    assert {c.event_id for c in done.copies}.isdisjoint({"pv-1", "pv-2"})
    assert done.state.account == "acme.com"
    assert done.state.identified_at == T0 + timedelta(hours=1)
    assert done.state.provenance == "email_domain"
    assert (done.state.first_seen_at, done.state.last_seen_at) == (T0, T0 + timedelta(hours=1))
    assert done.newly_identified


def test_visits_after_the_identification_are_attributed_at_once() -> None:
    done = run([identify(1, T0, "acme.com", confidence=1.0), page(1, T0 + timedelta(days=2))])
    assert done.pending == ()
    (copy,) = done.copies
    assert (copy.account, copy.account_provenance, copy.account_confidence) == (
        "acme.com",
        "stitched",
        1.0,
    )
    assert copy.event_id == stitched_event_id("pv-1")


def test_both_orders_in_one_batch_give_the_same_copies() -> None:
    visits = [page(1, T0), page(2, T0 + timedelta(minutes=1))]
    identification = identify(1, T0 + timedelta(minutes=2), "acme.com")
    before = apply_visitor(None, (), [*visits, identification])
    after = apply_visitor(None, (), [identification, *visits])
    assert sorted(c.event_id for c in before.copies) == sorted(c.event_id for c in after.copies)
    assert len(before.copies) == 2
    assert before.state == after.state
    assert (before.attributed_from_pending, before.attributed_directly) == (2, 0)
    assert (after.attributed_from_pending, after.attributed_directly) == (0, 2)


def test_a_repeated_identification_attributes_nothing_again() -> None:
    events: list[Event] = [page(1, T0), identify(1, T0 + timedelta(hours=1), "acme.com"),
                           identify(2, T0 + timedelta(hours=2), "acme.com")]  # fmt: skip
    done = run(events)
    assert [c.event_id for c in done.copies] == [stitched_event_id("pv-1")]
    assert done.state.identified_at == T0 + timedelta(hours=1)


def test_a_later_identification_as_another_account_is_recorded_not_reattributed() -> None:
    events: list[Event] = [page(1, T0), identify(1, T0 + timedelta(hours=1), "acme.com"),
                           identify(2, T0 + timedelta(hours=2), "globex.com"),
                           page(2, T0 + timedelta(hours=3))]  # fmt: skip
    done = run(events)
    assert [c.account for c in done.copies] == ["acme.com", "acme.com"]
    assert done.state.account == "acme.com"
    assert done.state.last_identified_account == "globex.com"


def test_an_earlier_identification_of_the_same_account_moves_identified_at_back() -> None:
    done = run([identify(2, T0 + timedelta(hours=2), "acme.com"), identify(1, T0, "acme.com")])
    assert done.state.identified_at == T0


def test_copy_ids_are_deterministic_and_distinct() -> None:
    assert stitched_event_id("pv-1") == stitched_event_id("pv-1")
    assert stitched_event_id("pv-1") != stitched_event_id("pv-2")
    assert len(stitched_event_id("x" * 128)) <= 128
    first = run([page(1, T0), identify(1, T0, "acme.com")]).copies
    again = run([page(1, T0), identify(9, T0, "acme.com")]).copies
    assert [c.event_id for c in first] == [c.event_id for c in again]


def test_pending_events_are_bounded_by_count_and_by_window() -> None:
    limits = StitchLimits(max_pending=3, pending_window=timedelta(days=90))
    old = page(0, T0 - timedelta(days=91))
    recent = [page(n, T0 + timedelta(minutes=n)) for n in range(1, 6)]
    done = run([old, *recent], limits)
    # the 91-day-old one falls out of the window, then the 3 most recent are kept
    assert [p.event.event_id for p in done.pending] == ["pv-3", "pv-4", "pv-5"]
    counted = apply_visitor(None, (), [old, *recent], limits)
    assert (counted.stored_pending, counted.pruned_pending) == (6, 3)

    identified = run([old, *recent, identify(1, T0 + timedelta(hours=1), "acme.com")], limits)
    assert [c.event_id for c in identified.copies] == [
        stitched_event_id(f"pv-{n}") for n in (3, 4, 5)
    ]


def test_an_ip_range_account_is_recorded_without_identifying() -> None:
    sighting = page(1, T0, account="acme.com", account_provenance="ip_range",
                    account_confidence=0.6)  # fmt: skip
    done = run([page(0, T0 - timedelta(minutes=5)), sighting])
    assert done.state.account == "acme.com"
    assert done.state.provenance == "ip_range"
    assert done.state.identified_at is None
    assert done.copies == ()
    # the anonymous visit still waits for a real identification
    assert [p.event.event_id for p in done.pending] == ["pv-0"]

    identified = run([page(0, T0), sighting, identify(1, T0 + timedelta(hours=1), "globex.com")])
    assert identified.state.account == "globex.com"
    assert identified.state.provenance == "email_domain"
    assert [c.account for c in identified.copies] == ["globex.com"]


def test_a_weak_account_never_overrides_an_identification() -> None:
    sighting = page(2, T0 + timedelta(hours=2), account="isp.net", account_provenance="ip_range")
    done = run([identify(1, T0, "acme.com"), sighting])
    assert (done.state.account, done.state.provenance) == ("acme.com", "email_domain")
    assert done.copies == ()  # the sighting has an account already: nothing to copy


def test_classification() -> None:
    assert classify(page(1, T0)) == "anonymous"
    assert classify(identify(1, T0, "acme.com")) == "identification"
    assert classify(identify(1, T0, "acme.com", provenance="group_id")) == "identification"
    assert classify(identify(1, T0, "acme.com", provenance=None)) == "identification"
    form = FormSubmitted(event_id="f", occurred_at=T0, received_at=T0, anonymous_id="v",
                         source="web", account="acme.com")  # fmt: skip
    assert classify(form) == "identification"
    assert classify(page(1, T0, account="acme.com")) == "sighting"  # no provenance, a visit
    assert classify(page(1, T0, account="acme.com", account_provenance="visitor")) == "sighting"
    copy = stitched_copy(page(1, T0), "acme.com", 0.9)
    assert classify(copy) == "ignored"  # never stitched again
    assert classify(page(1, T0, is_bot=True)) == "ignored"
    surge = SurgeStarted(event_id="s", occurred_at=T0, received_at=T0, source="intent",
                         account="acme.com", topic="crm", score=80, baseline=1, observed=5,
                         detector_version="v1")  # fmt: skip
    assert classify(surge) == "ignored"
    # What the consumer passes over without claiming it: exactly the ignored events.
    assert not concerns_a_visitor(surge) and not concerns_a_visitor(copy)
    assert concerns_a_visitor(page(1, T0)) and concerns_a_visitor(form)


def test_visitor_events_groups_per_visitor_and_skips_the_rest() -> None:
    copy = stitched_copy(page(3, T0), "acme.com", None)
    grouped = visitor_events([page(1, T0, visitor="a"), page(2, T0, visitor="b"), copy,
                              page(4, T0, visitor="a")])  # fmt: skip
    assert {v: [e.event_id for e in es] for v, es in grouped.items()} == {
        "a": ["pv-1", "pv-4"],
        "b": ["pv-2"],
    }


def test_the_same_pending_event_twice_is_kept_once() -> None:
    done = run([page(1, T0), page(1, T0), identify(1, T0, "acme.com")])
    assert [c.event_id for c in done.copies] == [stitched_event_id("pv-1")]
