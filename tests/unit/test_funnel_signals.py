"""What the funnel records of an account's signals: counters, activity, contacts, surges."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import pytest

from schemas.events import Event, Stage, StageChanged
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_event
from services.funnel.signals import is_high_value
from services.funnel.state import (
    MAX_CONTACTS,
    MAX_VIEW_THROUGH_CAMPAIGNS,
    AccountState,
    Counters,
    ViewThrough,
    contact_key,
)
from tests.unit.funnel_scenarios import T0, ev

CONFIG = FunnelConfig()


def run(events: Sequence[Event]) -> tuple[AccountState, list[StageChanged]]:
    state: AccountState | None = None
    changes: list[StageChanged] = []
    for event in events:
        state, outputs = apply_event(state, event, CONFIG)
        changes.extend(o for o in outputs if isinstance(o, StageChanged))
    assert state is not None
    return state, changes


def at(day: float) -> datetime:
    return T0 + timedelta(days=day)


def test_counters_and_view_through_visits() -> None:
    state, _ = run(
        [
            ev("page_viewed", 0, url="https://acme.example/Pricing?plan=pro"),
            ev("ad_impressed", 1, campaign_id="c1"),
            ev("page_viewed", 2, url="/blog"),  # view-through: impression, no click
            ev("page_viewed", 9, url="/blog/2"),  # 8 days after: outside the 7-day window
            ev("ad_impressed", 10, campaign_id="c1"),
            ev("ad_clicked", 10.5, campaign_id="c1"),
            ev("page_viewed", 11, url="/demo"),  # after a click: not view-through
            ev("chat_started", 12),
            ev("chat_message_sent", 12.1),
            ev("email_sent", 13),
            ev("email_opened", 14),
            ev("email_replied", 15),
            ev("email_sent", 16, direction="inbound"),
            ev("meeting_held", 17),
            ev("form_submitted", 18),
        ]
    )
    assert state.counters == Counters(
        visits=4,
        high_value_visits=2,
        view_through_visits=1,
        ad_impressions=2,
        ad_clicks=1,
        chats=1,
        emails=2,
        emails_sent=1,
        meetings=1,
        forms=1,
    )
    assert state.last_high_value_visit_at == at(11)


def test_activity_and_engagement_times() -> None:
    state, _ = run(
        [
            ev("ad_impressed", 1, campaign_id="c1"),  # reach: neither
            ev("email_sent", 2),  # our own touch: neither
            ev("email_opened", 3),  # activity only
            ev("intent_signal_received", 4, topic="crm"),  # activity only
            ev("page_viewed", 5, url="/"),  # engagement
            ev("page_viewed", 0.5, url="/", event_id="late"),  # late: times never go back
        ]
    )
    assert state.first_engaged_at == at(0.5)
    assert state.last_engaged_at == at(5)
    assert state.last_activity_at == at(5)
    assert state.last_activity_by_channel == {"email": at(3), "intent": at(4), "web": at(5)}
    assert state.clock == at(5)
    assert state.first_seen_at == at(1)


def test_reach_and_outbound_email_do_not_engage_a_target() -> None:
    state, changes = run(
        [
            ev("account_upserted", 0, target=True),
            ev("ad_impressed", 1, campaign_id="c1"),
            ev("email_sent", 2),
            ev("email_opened", 3),
        ]
    )
    assert [c.to_stage for c in changes] == [Stage.TARGET]
    assert state.last_engaged_at is None


def test_contacts_are_hashed_and_meeting_guests_from_elsewhere_skipped() -> None:
    state, _ = run(
        [
            ev("contact_identified", 0, contact_email="Ann@acme.com"),
            ev("form_submitted", 1, contact_email="ann@acme.com"),
            ev("meeting_held", 2, attendees=["bob@eu.acme.com", "rep@vendor.io"]),
            ev("chat_started", 3, contact_email="carl@gmail.com"),
        ]
    )
    expected = sorted(contact_key(e) for e in ("ann@acme.com", "bob@eu.acme.com", "carl@gmail.com"))
    assert list(state.contacts) == expected
    assert "ann@acme.com" not in state.model_dump_json()


def test_contacts_are_bounded() -> None:
    attendees = [f"p{i}@acme.com" for i in range(200)]
    state, _ = run(
        [
            ev("meeting_held", 0, "m1", attendees=attendees),
            ev("meeting_held", 1, "m2", attendees=[f"q{i}@acme.com" for i in range(200)]),
        ]
    )
    assert len(state.contacts) == MAX_CONTACTS


def test_surges_are_tracked_per_topic() -> None:
    surge: dict[str, Any] = {"score": 80, "baseline": 1, "observed": 9, "detector_version": "d1"}
    state, _ = run(
        [
            ev("surge_started", 1, topic="crm", **surge),
            ev("surge_started", 2, topic="erp", **surge),
            ev("surge_started", 3, "again", topic="crm", **surge),
            ev("surge_ended", 4, topic="erp", **surge),
        ]
    )
    assert state.surge_topics == {"crm": at(1)}
    assert state.last_surge_at == at(4)


def test_high_value_urls() -> None:
    assert is_high_value("https://acme.example/pricing", CONFIG)
    assert is_high_value("/en/Contact-Sales/form", CONFIG)
    assert not is_high_value("https://acme.example/blog?next=/pricing", CONFIG)
    assert is_high_value("http://[::1/pricing", CONFIG)  # unparsable: matched on the raw text


def test_view_through_visits_and_conversions_are_attributed_to_the_campaign() -> None:
    state, _ = run(
        [
            ev("ad_impressed", 0, campaign_id="c1"),
            ev("page_viewed", 1, url="/blog"),  # view-through visit of c1
            ev("form_submitted", 2),  # view-through conversion of c1
            ev("ad_impressed", 3, campaign_id="c2"),
            ev("ad_impressed", 2.5, campaign_id="c3", event_id="late impression"),  # not last
            ev("page_viewed", 4, url="/"),  # view-through visit of c2, the latest impression
            ev("opportunity_created", 5, opportunity_id="o1"),  # conversion of c2
            ev("opportunity_updated", 5.2, opportunity_id="o1"),  # not a new opportunity
            ev("ad_clicked", 5.5, campaign_id="c2"),
            ev("form_submitted", 6),  # after a click: not a view-through conversion
            ev("opportunity_created", 6.5, opportunity_id="o2"),  # after the click too
        ]
    )
    assert state.counters.view_through_visits == 2
    assert state.counters.view_through_conversions == 2
    assert state.view_through == {
        "c1": ViewThrough(visits=1, conversions=1),
        "c2": ViewThrough(visits=1, conversions=1),
    }
    assert state.last_impression_campaign == "c2"
    assert (state.last_view_through_at, state.last_view_through_campaign) == (at(4), "c2")


def test_a_conversion_long_after_the_view_through_visit_is_not_one() -> None:
    state, _ = run(
        [
            ev("ad_impressed", 0, campaign_id="c1"),
            ev("page_viewed", 1, url="/"),
            ev("form_submitted", 8.5),  # 7.5 days after the visit: outside the 7-day window
            ev("form_submitted", 0.5, event_id="before the visit"),
        ]
    )
    assert state.counters.view_through_conversions == 0
    assert state.view_through == {"c1": ViewThrough(visits=1, conversions=0)}


def test_view_through_campaigns_are_bounded() -> None:
    events = []
    for i in range(MAX_VIEW_THROUGH_CAMPAIGNS + 1):
        events += [
            ev("ad_impressed", i, campaign_id=f"c{i:02d}"),
            ev("page_viewed", i + 0.5, url="/"),
        ]
    state, _ = run(events)
    assert state.counters.view_through_visits == MAX_VIEW_THROUGH_CAMPAIGNS + 1
    assert len(state.view_through) == MAX_VIEW_THROUGH_CAMPAIGNS
    assert f"c{MAX_VIEW_THROUGH_CAMPAIGNS:02d}" not in state.view_through


@pytest.mark.parametrize(
    ("window_days", "visits", "conversions"),
    [(5, 0, 0), (7, 1, 0), (10, 1, 1)],  # 7: the default
)
def test_the_view_through_window_is_configurable(
    window_days: int, visits: int, conversions: int
) -> None:
    """The visit is 6 days after the impression, the form 8 days after the visit."""
    config = FunnelConfig(view_through_window_days=window_days)
    events = [
        ev("ad_impressed", 0, campaign_id="c1"),
        ev("page_viewed", 6, url="/"),
        ev("form_submitted", 14),
    ]
    state: AccountState | None = None
    for event in events:
        state, _ = apply_event(state, event, config)
    assert state is not None
    counted = (state.counters.view_through_visits, state.counters.view_through_conversions)
    assert counted == (visits, conversions)
    expected = {"c1": ViewThrough(visits=1, conversions=conversions)} if visits else {}
    assert state.view_through == expected
