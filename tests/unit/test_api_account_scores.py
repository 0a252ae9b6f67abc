"""The account detail's scores, read from the state document the funnel stores."""

from __future__ import annotations

from typing import Any

from services.api.accounts import signals_of
from services.api.models import (
    CommitteeView,
    EngagementView,
    RelationshipView,
    RoleFigures,
    ViewThroughFigures,
)
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_event
from services.funnel.state import AccountState
from tests.unit.funnel_scenarios import ev


def stored(events: list[Any]) -> dict[str, Any]:
    """The state document as the database hands it back (keys in another order)."""
    state: AccountState | None = None
    for event in events:
        state, _ = apply_event(state, event, FunnelConfig())
    assert state is not None
    document = state.model_dump(mode="json")
    return {key: document[key] for key in reversed(list(document))}


def test_scores_from_a_funnel_state() -> None:
    document = stored(
        [
            ev("contact_identified", 0, contact_email="ann@acme.com", title="CFO"),
            ev("email_sent", 1, contact_email="ann@acme.com"),
            ev("email_replied", 2, contact_email="ann@acme.com", direction="inbound"),
            ev("ad_impressed", 2.2, campaign_id="spring"),
            ev("page_viewed", 2.5, url="/pricing"),
        ]
    )
    scores = signals_of(document)
    assert str(scores["scores_as_of"]) == "2024-01-03"
    assert scores["view_through"] == {"spring": ViewThroughFigures(visits=1, conversions=0)}
    # A reply by a decision maker (8 x 2) and a high-value page view (5).
    assert scores["engagement"] == EngagementView(
        score=21, window_days=30, contributions={"email_reply": 16, "high_value_page_view": 5}
    )
    # sent 1, received 1: two-way 20; replies 20 * 1/4; contacts 15 * 1/4; recency 20.
    assert scores["relationship"] == RelationshipView(
        score=48.8,
        components={
            "contacts": 3.8,
            "meetings": 0.0,
            "recency": 20.0,
            "replies": 5.0,
            "two_way": 20.0,
        },
        previous=0.0,
        trend="improving",
        trend_days=30,
    )
    assert scores["committee"] == CommitteeView(
        stakeholders=1,
        engaged=1,
        penetration=1.0,
        roles={"decision_maker": RoleFigures(identified=1, engaged=1)},
    )


def test_a_state_written_before_the_scores_reads_as_zeros() -> None:
    scores = signals_of({"domain": "acme.com", "contacts_seen": ["0123456789abcdef"]})
    assert scores["scores_as_of"] is None
    assert scores["engagement"].score == 0
    assert scores["relationship"].trend == "steady"
    assert scores["committee"].stakeholders == 1
    assert scores["committee"].penetration is None
    assert scores["view_through"] == {}
