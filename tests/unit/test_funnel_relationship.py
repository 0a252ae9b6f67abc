"""The relationship score (0-100) from email and meeting patterns, and its 30-day trend.

Default parts: two-way 20, replies 20 (full at 4), meetings 25 (full at 3), contacts 15
(full at 4), recency 20 (full on the day, none 90 days later); window 90 days.
"""

from __future__ import annotations

from datetime import date

import pytest

from schemas.events import Event
from services.funnel.config import FunnelConfig, RelationshipConfig, RelationshipWeights
from services.funnel.relationship import trend
from tests.unit.funnel_scenarios import ev, run_checking_scores

DEFAULTS = FunnelConfig()


run = run_checking_scores


def conversation() -> list[Event]:
    """Three emails out, one reply in, then a meeting with two of the account's people."""
    return [
        ev("email_sent", 0, contact_email="ann@acme.com"),
        ev("email_opened", 0.5, contact_email="ann@acme.com"),  # not a conversation
        ev("email_replied", 1, contact_email="ann@acme.com", direction="inbound"),
        ev("email_replied", 2, contact_email="ann@acme.com"),  # our answer: outbound
        ev("email_sent", 3, contact_email="bob@acme.com"),
        ev("meeting_held", 10, attendees=["ann@acme.com", "bob@acme.com", "rep@vendor.io"]),
    ]


def test_score_on_the_day_of_the_meeting() -> None:
    relationship = run(conversation()).scores["relationship"]
    # sent 3, received 1: two-way 20 * 1/3; replies 20 * 1/4; meetings 25 * 1/3;
    # contacts (ann, bob) 15 * 2/4; recency 20 (a two-way touch today).
    assert relationship["components"] == {
        "two_way": 6.7,
        "replies": 5.0,
        "meetings": 8.3,
        "contacts": 7.5,
        "recency": 20.0,
    }
    assert relationship["score"] == 47.5  # 6.667 + 5 + 8.333 + 7.5 + 20
    assert relationship["previous"] == 0.0  # nothing 30 days before
    assert relationship["trend"] == "improving"
    assert relationship["trend_days"] == 30


def test_the_relationship_cools_down_without_touches() -> None:
    quiet = run([*conversation(), ev("intent_signal_received", 40, topic="crm")])
    relationship = quiet.scores["relationship"]
    # 30 days after the meeting: recency 20 * (1 - 30/90) = 13.333.
    assert relationship["components"]["recency"] == 13.3
    assert relationship["score"] == 40.8  # 6.667 + 5 + 8.333 + 7.5 + 13.333 = 40.83
    assert relationship["previous"] == 47.5  # the score on day 10, from the same buckets
    assert relationship["trend"] == "declining"  # fell by 6.7 points, more than 5


def test_the_window_forgets_old_conversations_and_the_buckets_stay_bounded() -> None:
    late = run([*conversation(), ev("intent_signal_received", 100, topic="crm")])
    # Day 100 is 2024-04-10: the meeting (2024-01-11) is 90 days back, out of the window.
    assert late.scores["relationship"]["score"] == 0.0
    # 30 days before (day 70): recency 20 * (1 - 60/90) = 6.667.
    assert late.scores["relationship"]["previous"] == 34.2  # 6.667 + 5 + 8.333 + 7.5 + 6.667
    assert late.scores["relationship"]["trend"] == "declining"
    again = run([*conversation(), ev("email_sent", 125, contact_email="ann@acme.com")])
    # Buckets are kept for 90 + 30 days: only day 10 (2024-01-11) and day 125 are left.
    assert [d.day for d in again.relationship_days] == [date(2024, 1, 11), date(2024, 5, 5)]


def test_a_one_way_conversation_scores_little() -> None:
    outbound_only = run([ev("email_sent", day, contact_email="ann@acme.com") for day in range(5)])
    assert outbound_only.scores["relationship"]["score"] == 0.0
    inbound = run(
        [
            ev("email_sent", 0, contact_email="ann@acme.com", direction="inbound"),
            ev("email_sent", 1, contact_email="carl@acme.com", direction="inbound"),
        ]
    )
    # received 2, sent 0: no two-way, no reply; contacts 15 * 2/4; recency 20.
    assert inbound.scores["relationship"]["components"] == {
        "two_way": 0.0,
        "replies": 0.0,
        "meetings": 0.0,
        "contacts": 7.5,
        "recency": 20.0,
    }
    assert inbound.scores["relationship"]["score"] == 27.5


def test_a_full_relationship_scores_100() -> None:
    people = [f"p{i}@acme.com" for i in range(4)]
    events: list[Event] = []
    for i, person in enumerate(people):
        events.append(ev("email_sent", i, contact_email=person))
        events.append(ev("email_replied", i + 0.5, contact_email=person, direction="inbound"))
    events += [ev("meeting_held", 5 + i, attendees=people) for i in range(3)]
    relationship = run(events).scores["relationship"]
    assert relationship["score"] == 100.0
    assert relationship["trend"] == "improving"


def test_weights_are_scaled_to_100() -> None:
    config = FunnelConfig(
        version="meetings only",
        relationship=RelationshipConfig(
            weights=RelationshipWeights(two_way=0, replies=0, meetings=1, contacts=0, recency=0),
            meetings_for_full=2,
        ),
    )
    state = run([ev("meeting_held", 0, attendees=["ann@acme.com"])], config)
    assert state.scores["relationship"]["score"] == 50.0  # 1 meeting of 2, the only part
    with pytest.raises(ValueError, match="must not all be 0"):
        RelationshipConfig(
            weights=RelationshipWeights(two_way=0, replies=0, meetings=0, contacts=0, recency=0)
        )


@pytest.mark.parametrize(
    ("score", "previous", "threshold", "expected"),
    [
        (50.0, 45.0, 5.0, "improving"),
        (50.0, 45.1, 5.0, "steady"),
        (45.0, 50.0, 5.0, "declining"),
        (45.1, 50.0, 5.0, "steady"),
        (45.0, 45.0, 0.0, "steady"),
        (45.1, 45.0, 0.0, "improving"),
    ],
)
def test_trend(score: float, previous: float, threshold: float, expected: str) -> None:
    assert trend(score, previous, threshold) == expected
