"""Funnel KPIs on hand-computed examples."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from schemas.events import Stage
from services.funnel.kpis import (
    StageConversion,
    pipeline_amount,
    reached_counts,
    stage_conversions,
    stage_counts,
    target_count,
    targets_engaged_share,
    tier_counts,
)
from services.funnel.state import AccountState

T0 = datetime(2024, 1, 1, tzinfo=UTC)


def account(
    name: str, stage: Stage | None, furthest: Stage | None, *, is_target: bool = True, **kw: Any
) -> AccountState:
    return AccountState(
        domain=f"{name}.com",
        first_seen_at=T0,
        clock=T0,
        is_target=is_target,
        stage=stage,
        furthest_stage_rank=furthest.rank if furthest is not None else -1,
        **kw,
    )


# Ten accounts. Current stages: target 3 (t1, t2, lapsed), engaged 2, opportunity 1,
# won 1, retention 1, expansion 0, and two without a stage.
ACCOUNTS = [
    account("t1", Stage.TARGET, Stage.TARGET, tier=3),
    account("t2", Stage.TARGET, Stage.TARGET, tier=3),
    account("lapsed", Stage.TARGET, Stage.OPPORTUNITY, tier=2),  # a lost opportunity
    account("e1", Stage.ENGAGED, Stage.ENGAGED, tier=1),
    account("e2", Stage.ENGAGED, Stage.ENGAGED, tier=2),
    account("o1", Stage.OPPORTUNITY, Stage.OPPORTUNITY, tier=1, open_opportunities={"a": 50.0}),
    account("w1", Stage.WON, Stage.WON, tier=1, open_opportunities={"b": 7.0}),
    account("r1", Stage.RETENTION, Stage.RETENTION, is_target=False),
    account("out", None, Stage.ENGAGED, is_target=False),  # untargeted after engaging
    account("never", None, None, is_target=False, open_opportunities={"c": 1000.0}),
]


def test_stage_counts() -> None:
    assert stage_counts(ACCOUNTS) == {
        Stage.TARGET: 3,
        Stage.ENGAGED: 2,
        Stage.OPPORTUNITY: 1,
        Stage.WON: 1,
        Stage.RETENTION: 1,
        Stage.EXPANSION: 0,
    }


def test_reached_counts() -> None:
    # ranks: 0, 0, 2, 1, 1, 2, 3, 4, 1, -1
    assert reached_counts(ACCOUNTS) == {
        Stage.TARGET: 9,
        Stage.ENGAGED: 7,
        Stage.OPPORTUNITY: 4,
        Stage.WON: 2,
        Stage.RETENTION: 1,
        Stage.EXPANSION: 0,
    }


def test_stage_conversions() -> None:
    assert stage_conversions(ACCOUNTS) == [
        StageConversion(Stage.TARGET, Stage.ENGAGED, 9, 7, 7 / 9),
        StageConversion(Stage.ENGAGED, Stage.OPPORTUNITY, 7, 4, 4 / 7),
        StageConversion(Stage.OPPORTUNITY, Stage.WON, 4, 2, 0.5),
        StageConversion(Stage.WON, Stage.RETENTION, 2, 1, 0.5),
        StageConversion(Stage.RETENTION, Stage.EXPANSION, 1, 0, 0.0),
    ]


def test_conversion_is_none_without_a_denominator() -> None:
    conversions = stage_conversions([account("t", Stage.TARGET, Stage.TARGET)])
    assert conversions[0].rate == 0.0
    assert [c.rate for c in conversions[1:]] == [None, None, None, None]


def test_targets_and_tiers() -> None:
    assert target_count(ACCOUNTS) == 7
    assert tier_counts(ACCOUNTS) == {1: 3, 2: 2, 3: 2}


def test_targets_engaged_share() -> None:
    # Targets: t1, t2, lapsed (target stage), e1, e2, o1, w1 -> engaged or beyond: 4 of 7.
    assert targets_engaged_share(ACCOUNTS) == pytest.approx(4 / 7)
    assert targets_engaged_share([account("x", None, None, is_target=False)]) is None


def test_pipeline_counts_open_opportunities_of_targets_only() -> None:
    assert pipeline_amount(ACCOUNTS) == 57.0


def test_kpis_accept_one_shot_iterables() -> None:
    assert stage_counts(iter(ACCOUNTS))[Stage.TARGET] == 3
    assert stage_conversions(iter(ACCOUNTS))[0].reached_from == 9
