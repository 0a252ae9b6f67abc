"""The buying committee: stakeholders identified, engaged ones, penetration, roles."""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import date

from schemas.events import Event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_event
from services.funnel.scores import Committee, RoleCount
from services.funnel.scoring import rescore
from services.funnel.state import AccountState, Contact, contact_key
from tests.unit.funnel_scenarios import ev

DEFAULTS = FunnelConfig()


def run(events: Sequence[Event], state: AccountState | None = None) -> AccountState:
    for event in events:
        state, _ = apply_event(state, event, DEFAULTS)
        assert state is not None
        assert state.scores == rescore(state, DEFAULTS).scores
    assert state is not None
    return state


def committee_story() -> list[Event]:
    return [
        ev("contact_identified", 0, contact_email="ann@acme.com", title="VP Sales"),
        ev("contact_identified", 0.1, contact_email="bob@acme.com", role="champion"),
        ev("contact_identified", 0.2, contact_email="carl@acme.com", title="Data Engineer"),
        ev("meeting_held", 1, attendees=["dan@acme.com", "rep@vendor.io"]),  # dan: no role
        ev("email_clicked", 5, contact_email="ann@acme.com"),
        ev("email_replied", 6, contact_email="carl@acme.com"),  # our reply to carl: not his
        ev("form_submitted", 20, contact_email="bob@acme.com"),
    ]


def test_stakeholders_engaged_within_the_window() -> None:
    state = run(committee_story())
    assert state.scores["committee"] == Committee(
        stakeholders=4,
        engaged=3,  # ann (day 5), bob (day 20), dan (day 1)
        penetration=0.75,
        roles={
            "champion": RoleCount(identified=1, engaged=1),
            "decision_maker": RoleCount(identified=1, engaged=1),
            "unknown": RoleCount(identified=1, engaged=1),
            "user": RoleCount(identified=1, engaged=0),
        },
    )
    assert state.contacts[contact_key("ann@acme.com")] == Contact(
        role="decision_maker", engaged_on=date(2024, 1, 6)
    )
    # Day 31 is 2024-02-01: dan's meeting (2024-01-02) is 30 days back, out of the window.
    later = run([ev("intent_signal_received", 31, topic="crm")], state)
    assert (later.scores["committee"]["engaged"], later.scores["committee"]["penetration"]) == (
        2,
        0.5,
    )


def test_a_contact_keeps_its_last_known_role() -> None:
    state = run(
        [
            *committee_story(),
            ev("contact_identified", 21, contact_email="ANN@acme.com"),  # no role: kept
            ev("contact_identified", 22, contact_email="bob@acme.com", title="Software Engineer"),
        ]
    )
    roles = state.scores["committee"]["roles"]
    assert roles["decision_maker"] == RoleCount(identified=1, engaged=1)
    assert roles["user"] == RoleCount(identified=2, engaged=1)  # carl, and bob now
    assert "champion" not in roles


def test_no_stakeholders_no_penetration() -> None:
    state = run([ev("page_viewed", 0, url="/")])
    assert state.scores["committee"] == Committee(
        stakeholders=0, engaged=0, penetration=None, roles={}
    )


def test_the_committee_never_holds_addresses() -> None:
    document = json.dumps(run(committee_story()).model_dump(mode="json"))
    assert not [who for who in ("ann@", "bob@", "carl@", "dan@") if who in document]


def test_states_written_before_roles_still_load() -> None:
    """An older state had ``contacts_seen``, a tuple of keys: those are contacts of unknown
    role, never engaged; the scores come back at the next signal."""
    keys = sorted([contact_key("ann@acme.com"), contact_key("bob@acme.com")])
    old = {
        "domain": "acme.com",
        "first_seen_at": "2024-01-01T00:00:00Z",
        "clock": "2024-01-01T00:00:00Z",
        "counters": {"visits": 3},
        "contacts_seen": keys,
    }
    state = AccountState.model_validate_json(json.dumps(old))
    assert state.contacts == {key: Contact() for key in keys}
    assert state.counters.view_through_conversions == 0
    restored = AccountState.model_validate_json(state.model_dump_json())
    assert restored == state
    after = run([ev("form_submitted", 1, contact_email="bob@acme.com")], state)
    assert after.scores["committee"]["stakeholders"] == 2
    assert after.scores["committee"]["engaged"] == 1
    assert after.scores["engagement"]["score"] == 10
