"""The engagement score: weighted activity in a window of days, by the contact's role."""

from __future__ import annotations

import json
import random
from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from pydantic import ValidationError

from schemas.events import Event
from services.funnel.committee import resolve_role
from services.funnel.config import (
    EngagementConfig,
    EngagementWeights,
    FunnelConfig,
    load_funnel_config,
)
from services.funnel.processing import apply_event
from services.funnel.scoring import rescore
from services.funnel.state import AccountState
from tests.unit.funnel_scenarios import ev, run_checking_scores

DEFAULTS = FunnelConfig()


run = run_checking_scores


def ten_days() -> list[Event]:
    """Every kind of activity once, by contacts of known and unknown roles (days 0-10)."""
    return [
        ev("contact_identified", 0, contact_email="ann@acme.com", title="VP Marketing"),
        ev("contact_identified", 0.1, contact_email="bob@acme.com", role="Champion"),
        ev("page_viewed", 1, url="/blog"),  # 1
        ev("page_viewed", 2, url="/pricing"),  # high value: 5
        ev("ad_impressed", 3, campaign_id="c1"),  # reach: 0
        ev("page_viewed", 4, url="/blog/2"),  # view-through: 2
        ev("email_clicked", 5, contact_email="ann@acme.com"),  # 3 x 2 (decision maker)
        ev("email_replied", 6, contact_email="bob@acme.com", direction="inbound"),  # 8 x 1.5
        ev("email_replied", 7, contact_email="bob@acme.com"),  # our own reply: 0
        ev("meeting_held", 8, attendees=["ann@acme.com", "bob@acme.com", "rep@vendor.io"]),
        ev("form_submitted", 9, contact_email="carl@acme.com"),  # unknown role: 10
        ev("chat_started", 9.5),  # 4
        ev("chat_message_sent", 9.6),  # not an activity of its own: 0
        ev("email_sent", 10, contact_email="dan@acme.com", direction="inbound"),  # 6
        ev("ad_clicked", 10.5, campaign_id="c1"),  # 3
    ]


def test_every_activity_weighted_by_its_contacts_role() -> None:
    state = run(ten_days())
    engagement = state.scores["engagement"]
    assert engagement["contributions"] == {
        "page_view": 1,
        "high_value_page_view": 5,
        "view_through_visit": 2,
        "email_click": 6,  # 3 x 2.0
        "email_reply": 12,  # 8 x 1.5
        "meeting": 30,  # 15 x 2.0: the strongest role among the attendees
        "form": 10,
        "chat": 4,
        "email_inbound": 6,
        "ad_click": 3,
    }
    assert engagement["score"] == 79
    assert engagement["window_days"] == 30
    assert state.scores["as_of"] == date(2024, 1, 11)


def test_activity_leaves_the_window_day_by_day() -> None:
    events = ten_days()
    # Day 31 is 2024-02-01: day 1 (2024-01-02) is 30 days back, out of a 30-day window.
    on_day_31 = run([*events, ev("intent_signal_received", 31, topic="crm")])
    assert on_day_31.scores["engagement"]["score"] == 78
    assert "page_view" not in on_day_31.scores["engagement"]["contributions"]
    on_day_38 = run([*events, ev("intent_signal_received", 38, topic="crm")])
    assert on_day_38.scores["engagement"]["score"] == 10 + 4 + 6 + 3  # days 9 and 10 are left
    on_day_41 = run([*events, ev("intent_signal_received", 41, topic="crm")])
    assert on_day_41.scores["engagement"]["score"] == 0
    assert on_day_41.scores["engagement"]["contributions"] == {}


def test_late_events_count_on_their_own_day() -> None:
    state = run(
        [
            ev("page_viewed", 40, url="/"),
            ev("page_viewed", 15, url="/pricing", event_id="late, in the window"),
            ev("page_viewed", 5, url="/pricing", event_id="late, out of the window"),
        ]
    )
    assert state.scores["engagement"]["score"] == 1 + 5
    assert [bucket.day for bucket in state.engagement_days] == [
        date(2024, 1, 16),
        date(2024, 2, 10),
    ]


def test_weights_roles_and_window_are_configurable() -> None:
    config = FunnelConfig(
        version="custom",
        engagement=EngagementConfig(
            window_days=7,
            weights=EngagementWeights(page_view=2, meeting=20),
            role_weights={"buyer": 3.0},
            title_keywords={"buyer": ("procurement",)},
        ),
    )
    state = run(
        [
            ev("contact_identified", 0, contact_email="eve@acme.com", title="Procurement Lead"),
            ev("page_viewed", 1, url="/"),  # out of the window on day 8
            ev("page_viewed", 2, url="/"),
            ev("meeting_held", 8, attendees=["eve@acme.com"]),
        ],
        config,
    )
    assert state.scores["engagement"]["contributions"] == {"page_view": 2, "meeting": 60}
    assert state.scores["engagement"]["score"] == 62
    assert state.scores["config_version"] == "custom"


def test_the_window_defaults_to_the_recent_window() -> None:
    assert FunnelConfig(recent_window_days=14).engagement_score_window_days == 14
    own = FunnelConfig(recent_window_days=14, engagement=EngagementConfig(window_days=60))
    assert own.engagement_score_window_days == 60


@pytest.mark.parametrize(
    ("role", "title", "expected"),
    [
        ("Decision Maker", None, "decision_maker"),
        ("decision-maker", "Intern", "decision_maker"),
        (None, "VP Marketing", "decision_maker"),
        (None, "CTO", "decision_maker"),
        (None, "Chief Revenue Officer", "decision_maker"),
        (None, "General Manager, EMEA", "decision_maker"),  # beats "manager" (influencer)
        (None, "Director of Engineering", "champion"),  # "cto" is not a word of it
        (None, "Head of IT", "champion"),
        (None, "Marketing Operations Manager", "influencer"),
        (None, "Senior Software Engineer", "user"),
        (None, "Contractor", "unknown"),
        (None, None, "unknown"),
        ("buyer", "Barista", "unknown"),
        ("Team lead", None, "influencer"),  # a free-text role read like a title
    ],
)
def test_roles_from_role_or_title(role: str | None, title: str | None, expected: str) -> None:
    assert resolve_role(role, title, DEFAULTS.engagement) == expected


def test_bad_engagement_configuration_is_refused() -> None:
    with pytest.raises(ValidationError):
        EngagementConfig(role_weights={"Decision Maker": 2.0}, title_keywords={})
    with pytest.raises(ValidationError):
        EngagementConfig(title_keywords={"ceo": ("chief",)})  # no such role weighted
    with pytest.raises(ValidationError):
        EngagementConfig(role_weights={"unknown": 5.0}, title_keywords={})
    with pytest.raises(ValidationError):
        EngagementWeights.model_validate({"page_veiw": 2})
    with pytest.raises(ValidationError):
        FunnelConfig(engagement=EngagementConfig(window_days=0))


def test_the_state_stays_small_for_a_busy_account() -> None:
    """A hundred page views a day for 60 days: one bucket per day of the window."""
    events = [ev("page_viewed", day + i / 100, url="/") for day in range(60) for i in range(100)]
    state: AccountState | None = None
    for event in events:
        state, _ = apply_event(state, event, DEFAULTS)
    assert state is not None
    assert len(state.engagement_days) == 30
    assert state.scores["engagement"]["score"] == 3_000
    assert len(json.dumps(state.model_dump(mode="json"))) < 8_000


def test_scores_kept_event_by_event_equal_scores_computed_afresh() -> None:
    """Many events of every kind, some late, over 200 days: the scores moved on from their
    counts equal a full computation, and survive a JSON round trip mid-way."""
    rng = random.Random(7)
    people = [f"p{i}@acme.com" for i in range(6)]
    makers: list[Callable[[float, str], Event]] = [
        lambda day, who: ev("page_viewed", day, url=rng.choice(["/", "/pricing", "/blog"])),
        lambda day, who: ev("ad_impressed", day, campaign_id=rng.choice(["c1", "c2"])),
        lambda day, who: ev("ad_clicked", day, campaign_id="c1"),
        lambda day, who: ev("email_sent", day, contact_email=who),
        lambda day, who: ev("email_replied", day, contact_email=who, direction="inbound"),
        lambda day, who: ev("meeting_held", day, attendees=[who, "rep@vendor.io"]),
        lambda day, who: ev("form_submitted", day, contact_email=who),
        lambda day, who: ev("contact_identified", day, contact_email=who, title="VP Sales"),
        lambda day, who: ev("account_upserted", day, employees=rng.randint(10, 900)),
    ]
    state: AccountState | None = None
    clock = 0.0
    for i in range(1500):
        clock += rng.expovariate(8)  # about 8 events a day, with gaps
        day = clock - rng.choice([0, 0, 0, 0.5, 3, 40])  # some arrive late
        event = rng.choice(makers)(max(day, 0), rng.choice(people))
        event = event.model_copy(update={"event_id": f"e{i}"})
        state, _ = apply_event(state, event, DEFAULTS)
        assert state is not None
        if i % 100 == 0:
            state = AccountState.model_validate_json(state.model_dump_json())
        if event.type != "account_upserted":  # only signals refresh the scores
            assert state.scores == rescore(state, DEFAULTS).scores, i
    assert state is not None
    assert state.scores["engagement"]["score"] > 0 and state.scores["relationship"]["score"] > 0


def test_a_new_configuration_version_rescores_at_the_next_signal() -> None:
    before = run(ten_days())
    heavier = FunnelConfig(
        version="funnel-2", engagement=EngagementConfig(weights=EngagementWeights(page_view=10))
    )
    state, _ = apply_event(before, ev("page_viewed", 10.6, url="/"), heavier)
    assert state is not None
    # 79 before, the day-1 page view now worth 10 (+9), and this page view 10 more.
    assert state.scores["engagement"]["score"] == 79 + 9 + 10
    assert state.scores == rescore(state, heavier).scores


def test_score_settings_load_from_the_configuration_file(tmp_path: Path) -> None:
    path = tmp_path / "funnel.json"
    document = {
        "engagement": {"window_days": 14, "weights": {"meeting": 20}},
        "relationship": {"trend_days": 14, "weights": {"recency": 40}},
    }
    path.write_text(json.dumps(document))
    config = load_funnel_config(path)
    assert config.engagement_score_window_days == 14
    assert config.engagement.weights.meeting == 20
    assert config.engagement.weights.form == 10  # the others keep their defaults
    assert config.engagement.role_weights["decision_maker"] == 2.0
    assert (config.relationship.trend_days, config.relationship.weights.recency) == (14, 40)
    path.write_text(json.dumps({"engagement": {"weights": {"meetings": 20}}}))
    with pytest.raises(ValidationError):
        load_funnel_config(path)
