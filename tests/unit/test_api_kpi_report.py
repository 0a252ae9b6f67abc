"""The /v1/kpis report assembled from hand-made figures (no database)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas import kpi_catalogue
from schemas.events import Stage
from schemas.kpis import RenewalOutcome
from services.api.kpi_queries import Relationships, StageEntry
from services.api.kpis import Figures, stage_kpis
from services.kit.tables import ACTIVITY_COUNTERS

T0 = datetime(2026, 5, 1, tzinfo=UTC)


def figures(**overrides: Any) -> Figures:
    quiet = dict.fromkeys(ACTIVITY_COUNTERS, 0)
    values: dict[str, Any] = {
        "targets": 4,
        "stages_now": [("target", 0, 1), ("opportunity", 2, 1), ("won", 3, 1), (None, 1, 2)],
        "entries": [
            StageEntry("a.com", Stage.ENGAGED, Stage.OPPORTUNITY, T0),
            StageEntry("a.com", Stage.OPPORTUNITY, Stage.WON, T0 + timedelta(days=6)),
            StageEntry("b.com", Stage.OPPORTUNITY, Stage.ENGAGED, T0),  # lost
        ],
        "activity": {True: quiet | {"visits": 5, "touches": 7}, False: quiet | {"visits": 1}},
        "engaged": 2,
        "spend": 600.0,
        "opportunity_states": [
            {
                "contacts": {"k1": {"engaged_on": "2026-05-01"}, "k2": {}, "k3": {"role": "cfo"}},
                "scores": {"committee": {"stakeholders": 3, "engaged": 1}},
            },
            {"contacts_seen": ["k4"]},  # written before contacts had roles and scores
        ],
        "pipeline": 900.0,
        "first_engaged": {"a.com": T0 - timedelta(days=4)},
        "touches_until_won": {"a.com": 9},
        "revenue": [("new", 1000.0), ("renewal", 500.0), ("expansion", 50.0)],
        "renewal": RenewalOutcome(renewed=1, due=4),
        "nps_scores": [10, 3],
        "deanonymisation_rate": None,
        "relationships": {
            Stage.TARGET: Relationships(scored=2, mean_score=40.0, declining=1),
            Stage.RETENTION: Relationships(scored=0, mean_score=None, declining=0),
        },
    }
    return Figures(**(values | overrides))


def by_name(report: Any) -> dict[str, float | None]:
    return {kpi.name: kpi.value for stage in report for kpi in stage.kpis}


def test_every_kpi_of_the_catalogue_is_reported_once_under_its_stage() -> None:
    report = stage_kpis(figures())
    assert [s.stage for s in report] == [s.value for s in Stage]
    reported = [(s.stage, k.name) for s in report for k in s.kpis]
    assert reported == [(spec.stage.value, spec.name) for spec in kpi_catalogue.KPIS]


def test_report_values_by_hand() -> None:
    report = stage_kpis(figures())
    stages = {s.stage: s for s in report}
    assert [s.accounts for s in report] == [1, 0, 1, 1, 0, 0]
    assert (stages["opportunity"].entered, stages["won"].entered) == (1, 1)
    assert stages["opportunity"].regressions == 1  # b lost its opportunity
    values = by_name(report)
    assert values["visits"] == 5  # targets' only
    assert values["engaged_share"] == 0.5
    assert values["cost_per_engaged_account"] == 300.0
    assert values["opportunity_rate"] == 0.25 and values["win_rate"] == 0.25
    assert values["cost_per_opportunity"] == 600.0
    assert values["days_first_engagement_to_opportunity"] == 4.0
    assert values["deal_cycle_days"] == 10.0
    assert values["touches_per_won_account"] == 9.0
    # 4 contacts known over 2 accounts; 1 engaged of the 3 of the account with roles
    assert values["stakeholders"] == 2.0
    assert values["penetration"] == 1.0
    assert values["renewal_rate"] == 0.25
    assert values["average_contract_value"] == 750.0
    assert values["total_revenue"] == 1550.0
    assert values["nps"] == 0.0
    assert values["deanonymisation_rate"] is None
    assert (values["relationship_score"], values["declining_relationships"]) == (40.0, 1)
    assert values["customer_relationship_score"] is None


def test_nothing_to_divide_by_gives_nulls() -> None:
    empty = figures(targets=0, engaged=0, entries=[], opportunity_states=[], spend=100.0)
    values = by_name(stage_kpis(empty))
    for name in ("engaged_share", "not_engaged_share", "cost_per_engaged_account",
                 "opportunity_rate", "win_rate", "stakeholders", "penetration",
                 "cost_per_won_account", "touches_per_won_account"):  # fmt: skip
        assert values[name] is None, name
    assert values["spend"] == pytest.approx(100.0)
