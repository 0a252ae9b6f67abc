"""Goldilocks tiers: every branch, and the TierChanged events as signals come and go."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any
from uuid import uuid5

import pytest

from schemas.events import Event, TierChanged
from services.funnel.config import FunnelConfig
from services.funnel.fit import Firmographics, FitScore
from services.funnel.outputs import FUNNEL_NAMESPACE
from services.funnel.processing import apply_event
from services.funnel.state import AccountState
from services.funnel.tiers import TierAssessment, assess_tier, estimate_acv
from tests.unit.funnel_scenarios import T0, ev

NOW = T0 + timedelta(days=100)
CONFIG = FunnelConfig()  # tier 1 from ACV 100k, tier 2 from 25k, recent = 30 days


def account(
    *,
    fit: float = 80,
    is_target: bool = True,
    employees: int | None = None,
    engaged_days_ago: int | None = None,
    surge_days_ago: int | None = None,
    **fields: Any,
) -> AccountState:
    """A state at NOW with the given signals."""

    def ago(days: int | None) -> datetime | None:
        return None if days is None else NOW - timedelta(days=days)

    return AccountState(
        domain="acme.com",
        first_seen_at=T0,
        clock=NOW,
        is_target=is_target,
        fit=FitScore(score=fit),
        firmographics=Firmographics(employees=employees),
        last_engaged_at=ago(engaged_days_ago),
        last_surge_at=ago(surge_days_ago),
        **fields,
    )


@pytest.mark.parametrize(
    ("state", "expected"),
    [
        (account(is_target=False, fit=100), TierAssessment(None, "not_target")),
        (account(fit=59.99, surge_days_ago=0), TierAssessment(3, "tier3_below_fit")),
        (
            account(employees=1000, engaged_days_ago=30, surge_days_ago=30),
            TierAssessment(1, "tier1_just_right"),
        ),
        (account(employees=1000, surge_days_ago=1), TierAssessment(2, "tier2_recent_intent")),
        (
            account(employees=999, engaged_days_ago=1, surge_days_ago=1),  # ACV 99,900
            TierAssessment(2, "tier2_recent_intent"),
        ),
        (account(employees=250, engaged_days_ago=1), TierAssessment(2, "tier2_engaged_acv")),
        (account(employees=249, engaged_days_ago=1), TierAssessment(3, "tier3_always_on")),
        (
            account(employees=1000, engaged_days_ago=31, surge_days_ago=31),
            TierAssessment(3, "tier3_always_on"),
        ),
        (account(), TierAssessment(3, "tier3_always_on")),
    ],
)
def test_tier_branches(state: AccountState, expected: TierAssessment) -> None:
    assert assess_tier(state, CONFIG) == expected


def test_an_active_surge_is_recent_intent_however_old() -> None:
    state = account(surge_topics={"crm": NOW - timedelta(days=300)}, surge_days_ago=300)
    assert assess_tier(state, CONFIG) == TierAssessment(2, "tier2_recent_intent")


def test_a_recent_high_value_visit_is_first_party_intent() -> None:
    state = account(last_high_value_visit_at=NOW - timedelta(days=2))
    assert assess_tier(state, CONFIG) == TierAssessment(2, "tier2_recent_intent")


def test_acv_prefers_pipeline_then_won_revenue_then_the_estimate() -> None:
    assert estimate_acv(account(), CONFIG) == 0
    assert estimate_acv(account(employees=10), CONFIG) == 1000
    assert estimate_acv(account(employees=10, won_revenue=5.0), CONFIG) == 5
    pipeline = account(employees=10, won_revenue=5.0, open_opportunities={"a": 1.0, "b": 2.0})
    assert estimate_acv(pipeline, CONFIG) == 3


def run(events: Sequence[Event]) -> tuple[AccountState | None, list[TierChanged]]:
    state: AccountState | None = None
    tiers: list[TierChanged] = []
    for event in events:
        state, outputs = apply_event(state, event, CONFIG)
        tiers.extend(o for o in outputs if isinstance(o, TierChanged))
    return state, tiers


def test_tiers_follow_signals_as_they_come_and_go() -> None:
    # fit 60 (industry 25 + country 15 + employees 20), ACV estimate 2000 * 100 = 200k
    firmographics: dict[str, Any] = {"industry": "SaaS", "country": "US", "employees": 2000}
    upserted = ev("account_upserted", 0, **firmographics, annual_revenue=1)
    surged = ev(
        "surge_started", 1, topic="crm", score=80, baseline=1, observed=9, detector_version="d1"
    )
    visited = ev("page_viewed", 2, url="/blog")
    ended = ev(
        "surge_ended", 5, topic="crm", score=10, baseline=1, observed=1, detector_version="d1"
    )
    later = ev("nps_submitted", 36, score=9)  # 31 days after the last signal

    state, tiers = run([upserted, surged, visited, ended, later])

    assert [(t.from_tier, t.to_tier, t.rule) for t in tiers] == [
        (None, 3, "tier3_always_on"),
        (3, 2, "tier2_recent_intent"),
        (2, 1, "tier1_just_right"),  # ACV estimate 2000 * 100 = 200k
        (1, 2, "tier2_recent_intent"),  # day 32: the visit of day 2 is no longer recent
        (2, 3, "tier3_always_on"),  # day 35: nor is the surge that ended on day 5
    ]
    # Each drop happens when its window runs out, before the NPS answer of day 36.
    just_after = timedelta(microseconds=1)
    assert [t.occurred_at for t in tiers[3:]] == [
        visited.occurred_at + timedelta(days=30) + just_after,
        ended.occurred_at + timedelta(days=30) + just_after,
    ]
    assert tiers[1] == TierChanged(
        event_id=str(uuid5(FUNNEL_NAMESPACE, f"{surged.event_id}:tier:2")),
        occurred_at=surged.occurred_at,
        received_at=surged.received_at,
        account="acme.com",
        source="funnel",
        from_tier=3,
        to_tier=2,
        rule="tier2_recent_intent",
        config_version="funnel-1",
        cause_event_ids=[surged.event_id],
    )
    assert state is not None
    assert state.tier == 3
    assert state.tier_since == tiers[-1].occurred_at
    assert state.surge_topics == {}
    assert state.last_surge_at == ended.occurred_at


def test_leaving_the_target_list_drops_the_tier() -> None:
    state, tiers = run(
        [
            ev("account_upserted", 0, "u1", target=True),
            ev("account_upserted", 1, "u2", target=False),
        ]
    )
    assert [(t.from_tier, t.to_tier, t.rule) for t in tiers] == [
        (None, 3, "tier3_below_fit"),
        (3, None, "not_target"),
    ]
    assert tiers[1].event_id == str(uuid5(FUNNEL_NAMESPACE, "u2:tier:none"))
    assert state is not None
    assert state.tier is None
    assert state.tier_rule == "not_target"


def test_stage_changes_come_before_tier_changes() -> None:
    _, outputs = apply_event(None, ev("account_upserted", 0, target=True), CONFIG)
    assert [o.type for o in outputs] == ["stage_changed", "tier_changed"]


def test_the_tier_rule_follows_the_branch_without_an_event() -> None:
    # fit 60, ACV estimate 500 * 100 = 50k: medium
    firmographics: dict[str, Any] = {"industry": "SaaS", "country": "US", "employees": 500}
    state, tiers = run(
        [
            ev("account_upserted", 0, **firmographics),
            ev("page_viewed", 1, url="/blog"),
            ev(
                "surge_started",
                2,
                topic="crm",
                score=80,
                baseline=1,
                observed=9,
                detector_version="d",
            ),
        ]
    )
    assert [(t.to_tier, t.rule) for t in tiers] == [
        (3, "tier3_always_on"),
        (2, "tier2_engaged_acv"),
    ]
    assert state is not None
    assert state.tier == 2
    assert state.tier_rule == "tier2_recent_intent"
    assert state.tier_since == T0 + timedelta(days=1)
