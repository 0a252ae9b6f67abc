"""Every KPI definition of schemas.kpis on a hand-computed example."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import pytest

from schemas import kpi_catalogue, kpis
from schemas.events import STAGE_ORDER, Stage
from schemas.kpis import CohortStage, StageConversion, TermFact

T0 = datetime(2026, 1, 10, 12, tzinfo=UTC)


def test_every_stage_has_kpis_and_every_kpi_a_definition() -> None:
    assert {spec.stage for spec in kpi_catalogue.KPIS} == set(STAGE_ORDER)
    assert len(kpi_catalogue.KPI_BY_NAME) == len(kpi_catalogue.KPIS)  # names are unique
    assert all(spec.definition.endswith(".") for spec in kpi_catalogue.KPIS)


def test_ratios_are_none_over_nothing() -> None:
    assert kpis.ratio(3, 4) == 0.75
    assert kpis.ratio(0, 0) is None
    assert kpis.ratio(5, 0) is None


def test_engaged_and_not_engaged_share() -> None:
    # 3 of 12 targets engaged: 25 % engaged, 75 % not.
    assert kpis.engaged_share(3, 12) == 0.25
    assert kpis.not_engaged_share(3, 12) == 0.75
    assert kpis.engaged_share(0, 0) is None
    assert kpis.not_engaged_share(0, 0) is None


def test_cost_per_account() -> None:
    # 1,500 spent, 4 engaged accounts: 375 each; no account: undefined, not infinite.
    assert kpis.cost_per_account(1500.0, 4) == 375.0
    assert kpis.cost_per_account(1500.0, 0) is None


def test_per_account_averages() -> None:
    assert kpis.per_account(7, 2) == 3.5  # e.g. 7 touches over 2 won accounts
    assert kpis.per_account(7, 0) is None


def test_opportunity_win_deanonymisation_and_renewal_rates() -> None:
    assert kpis.opportunity_rate(2, 8) == 0.25
    assert kpis.win_rate(1, 8) == 0.125
    assert kpis.deanonymisation_rate(3, 10) == 0.3
    assert kpis.renewal_rate(4, 5) == 0.8
    assert kpis.win_rate(0, 0) is None


def test_average_contract_value_leaves_unknown_amounts_out() -> None:
    # (10,000 + 20,000 + 30,000) / 3; the 0 (amount unknown) is not a contract of 0.
    assert kpis.average_contract_value([10_000.0, 0.0, 20_000.0, 30_000.0]) == 20_000.0
    assert kpis.average_contract_value([0.0]) is None
    assert kpis.average_contract_value([]) is None


def test_total_revenue() -> None:
    assert kpis.total_revenue(new=100.0, renewals=50.0, expansion=25.0) == 175.0


def test_net_promoter_score() -> None:
    # 10 answers: promoters 9, 10, 10, 9 (4); passives 7, 8 (2); detractors 0, 6, 3, 5 (4).
    assert kpis.net_promoter_score([9, 10, 10, 9, 7, 8, 0, 6, 3, 5]) == 0.0
    # 3 answers: 2 promoters, 1 passive: 66.67 - 0.
    assert kpis.net_promoter_score([10, 9, 8]) == pytest.approx(200 / 3)
    assert kpis.net_promoter_score([6, 6]) == -100.0
    assert kpis.net_promoter_score([]) is None


def test_days_since_first_engagement() -> None:
    assert kpis.days_between(T0, T0 + timedelta(days=2, hours=12)) == 2.5
    assert kpis.days_since_first_engagement(T0, T0 + timedelta(days=3)) == 3.0
    assert kpis.days_since_first_engagement(None, T0) is None  # never engaged
    assert kpis.days_since_first_engagement(T0 + timedelta(days=1), T0) is None  # cold start


def test_median_days_ignores_unknown_durations() -> None:
    assert kpis.median_days([4.0, None, 1.0, 10.0]) == 4.0
    assert kpis.median_days([2.0, 3.0]) == 2.5
    assert kpis.median_days([None]) is None


def test_spend_in_period_is_pro_rata_by_day() -> None:
    january = (date(2026, 1, 1), date(2026, 1, 31))  # 31 days
    # 3,100 over January: 100 a day; the period 2026-01-25..2026-02-10 holds 7 of its days.
    assert kpis.spend_in_period(3100.0, *january, date(2026, 1, 25), date(2026, 2, 10)) == 700.0
    assert kpis.spend_in_period(3100.0, *january, None, None) == 3100.0
    assert kpis.spend_in_period(3100.0, *january, date(2026, 2, 1), None) == 0.0
    # one-day spend inside the period: all of it; reversed bounds are tolerated
    assert kpis.spend_in_period(50.0, date(2026, 1, 3), date(2026, 1, 3), None, None) == 50.0
    assert kpis.spend_in_period(62.0, january[1], january[0], date(2026, 1, 31), None) == 2.0


def test_stage_counts_and_reached_counts() -> None:
    stages = [Stage.TARGET, Stage.TARGET, Stage.ENGAGED, Stage.WON, None]
    assert kpis.stage_counts(stages) == {
        Stage.TARGET: 2, Stage.ENGAGED: 1, Stage.OPPORTUNITY: 0, Stage.WON: 1,
        Stage.RETENTION: 0, Stage.EXPANSION: 0,
    }  # fmt: skip
    # furthest ranks 0, 2, 2, 3, -1 (never in the funnel)
    reached = kpis.reached_counts([0, 2, 2, 3, -1])
    assert list(reached.values()) == [4, 3, 3, 1, 0, 0]
    assert kpis.reached_from_rank_counts({0: 1, 2: 2, 3: 1, -1: 1}) == reached


def test_stage_conversions() -> None:
    conversions = kpis.stage_conversions(kpis.reached_counts([0, 2, 2, 3, -1]))
    assert conversions == [
        StageConversion(Stage.TARGET, Stage.ENGAGED, 4, 3, 0.75),
        StageConversion(Stage.ENGAGED, Stage.OPPORTUNITY, 3, 3, 1.0),
        StageConversion(Stage.OPPORTUNITY, Stage.WON, 3, 1, 1 / 3),
        StageConversion(Stage.WON, Stage.RETENTION, 1, 0, 0.0),
        StageConversion(Stage.RETENTION, Stage.EXPANSION, 0, 0, None),
    ]


def test_regressions_are_moves_back_down() -> None:
    assert kpis.is_regression(Stage.OPPORTUNITY, Stage.ENGAGED)  # lost
    assert kpis.is_regression(Stage.ENGAGED, Stage.TARGET)  # lapsed
    assert kpis.is_regression(Stage.RETENTION, Stage.TARGET)  # churned
    assert kpis.is_regression(Stage.EXPANSION, Stage.TARGET)  # churned
    assert not kpis.is_regression(Stage.TARGET, Stage.ENGAGED)
    assert not kpis.is_regression(Stage.ENGAGED, None)  # untargeted: out, not down
    assert not kpis.is_regression(None, Stage.TARGET)


def test_moves_between_customer_stages_are_no_regressions() -> None:
    """A customer's history: won, an upsell, renewals, an upsell again, then a churn. Only
    the churn (and the earlier lapse and lost opportunity) went back down the funnel."""
    none, target, engaged, opportunity = None, Stage.TARGET, Stage.ENGAGED, Stage.OPPORTUNITY
    won, retention, expansion = Stage.WON, Stage.RETENTION, Stage.EXPANSION
    history = [
        (none, target),
        (target, engaged),
        (engaged, target),  # lapsed
        (target, opportunity),
        (opportunity, engaged),  # lost
        (engaged, opportunity),
        (opportunity, won),
        (won, expansion),
        (expansion, retention),  # renewed after the upsell
        (retention, expansion),
        (expansion, retention),
        (retention, target),  # churned
    ]
    regressions = [move for move in history if kpis.is_regression(*move)]
    assert regressions == [(engaged, target), (opportunity, engaged), (retention, target)]


def test_renewal_outcome_counts_decisions_and_silent_lapses() -> None:
    facts = [
        # a: won in 2025 with a term to 2026-03-31, renewed in March: due, renewed
        TermFact("a.com", "new", date(2025, 4, 1), date(2026, 3, 31)),
        TermFact("a.com", "renewal", date(2026, 3, 20), date(2027, 3, 31)),
        # b: churned in the period: due, not renewed
        TermFact("b.com", "churn", date(2026, 2, 1)),
        # c: term ended 2026-02-28, no word since: a silent lapse, due, not renewed
        TermFact("c.com", "new", date(2025, 3, 1), date(2026, 2, 28)),
        # d: term runs to 2026-12-31: not due
        TermFact("d.com", "new", date(2025, 12, 1), date(2026, 12, 31)),
        # e: renewed before the period for a term ending after it: not due
        TermFact("e.com", "renewal", date(2025, 12, 15), date(2026, 12, 31)),
        # f: renewed after the period: not seen by the period
        TermFact("f.com", "new", date(2025, 1, 1), date(2026, 5, 31)),
        TermFact("f.com", "renewal", date(2026, 5, 1), date(2027, 5, 31)),
    ]
    outcome = kpis.renewal_outcome(facts, date(2026, 1, 1), date(2026, 3, 31))
    assert (outcome.renewed, outcome.due) == (1, 3)
    assert outcome.rate == pytest.approx(1 / 3)
    # Open-ended: only decisions count (a, b, e, f renewed or churned), lapses cannot be told.
    open_ended = kpis.renewal_outcome(facts, None, None)
    assert (open_ended.renewed, open_ended.due) == (3, 4)
    assert kpis.renewal_outcome([], None, None).rate is None


def test_cohorts_by_entry_month() -> None:
    jan, feb = datetime(2026, 1, 5, tzinfo=UTC), datetime(2026, 2, 1, tzinfo=UTC)
    journeys = [
        {Stage.TARGET: jan, Stage.ENGAGED: jan + timedelta(days=2),
         Stage.OPPORTUNITY: jan + timedelta(days=10)},
        {Stage.TARGET: jan + timedelta(days=20), Stage.ENGAGED: jan + timedelta(days=24)},
        {Stage.TARGET: feb},
        {Stage.RETENTION: feb + timedelta(days=3)},  # an imported customer: enters at renewal
    ]  # fmt: skip
    january, february = kpis.cohorts(journeys)
    assert (january.month, january.size) == ("2026-01", 2)
    assert january.stages[:3] == (
        CohortStage(Stage.ENGAGED, 2, 3.0),  # median of 2 and 4 days
        CohortStage(Stage.OPPORTUNITY, 1, 10.0),
        CohortStage(Stage.WON, 0, None),
    )
    assert (february.month, february.size) == ("2026-02", 2)
    assert [s.reached for s in february.stages] == [0, 0, 0, 1, 0]
    assert february.stages[3] == CohortStage(Stage.RETENTION, 1, 0.0)
    assert kpis.cohorts([{}]) == []


def test_day_after() -> None:
    assert kpis.day_after(date(2026, 2, 28)) == date(2026, 3, 1)


def test_engaged_share_is_not_the_share_at_or_beyond_engaged() -> None:
    # 5 targets now: t (target), e (engaged), o (opportunity), w (won), x (no stage).
    # Engaged or beyond now: e, o, w -> 3 / 5. Engaged within the period: only e and w
    # (o's opportunity came without an engagement in it) -> 2 / 5.
    stages = [Stage.TARGET, Stage.ENGAGED, Stage.OPPORTUNITY, Stage.WON, None]
    assert kpis.share_at_or_beyond(stages, Stage.ENGAGED) == 0.6
    assert kpis.engaged_share(2, 5) == 0.4
    assert kpis.share_at_or_beyond([], Stage.ENGAGED) is None


def test_deanonymisation_within_the_period() -> None:
    start, end = datetime(2026, 2, 1, tzinfo=UTC), datetime(2026, 3, 1, tzinfo=UTC)
    jan, feb, mar = (datetime(2026, m, 10, tzinfo=UTC) for m in (1, 2, 3))
    visitors = [
        (jan, feb),  # anonymous at the start, identified within: counted, identified
        (feb, None),  # first seen within, still anonymous: counted
        (feb, mar),  # identified after the period: counted, not identified
        (jan, jan),  # known before the period: out
        (mar, None),  # came after the period: out
        (jan, start),  # identified at the start's instant: counted, identified
        (jan, end),  # identified at the end's instant (outside): counted, not identified
    ]
    outcome = kpis.deanonymisation(visitors, start, end)
    assert (outcome.identified, outcome.anonymous) == (2, 5)
    assert outcome.rate == 0.4
    # Without a period: every visitor is counted, every identified one too: 5 of 7.
    assert kpis.deanonymisation(visitors, None, None) == kpis.Deanonymisation(5, 7)
    assert kpis.deanonymisation([], start, end).rate is None


def test_pipeline_counts_open_opportunities_of_targets_whatever_their_stage() -> None:
    accounts = [
        (True, {"A": 5_000.0, "B": 2_500.0}),  # a target with an opportunity: 7,500
        (True, {"U": 1_000.0}),  # a customer (target) with an upsell opportunity: 1,000
        (True, {}),  # a target without any
        (False, {"N": 90_000.0}),  # no target: out
    ]
    assert kpis.pipeline(accounts) == 8_500.0
    assert kpis.pipeline([]) == 0.0


def test_touches_per_won_account() -> None:
    signed = {"a.com": date(2026, 2, 14), "b.com": date(2026, 2, 20)}
    daily = [
        ("a.com", date(2026, 1, 30), 2),
        ("a.com", date(2026, 2, 14), 1),  # the signature day counts
        ("a.com", date(2026, 2, 15), 7),  # after signing: not a touch to win it
        ("b.com", date(2026, 2, 1), 4),
        ("c.com", date(2026, 2, 1), 9),  # not won
    ]
    touches = kpis.touches_until_signature(signed, daily)
    assert touches == {"a.com": 3, "b.com": 4}
    assert kpis.touches_per_won_account(touches, {"a.com", "b.com"}) == 3.5
    # d won without a recorded touch: 0 for it, (3 + 4 + 0) / 3
    assert kpis.touches_per_won_account(touches, {"a.com", "b.com", "d.com"}) == 7 / 3
    assert kpis.touches_per_won_account(touches, set()) is None


def test_stakeholders_and_penetration() -> None:
    committees = [
        kpis.Committee(contacts=3, engaged=1),
        kpis.Committee(contacts=5, engaged=2),
        kpis.Committee(contacts=1, engaged=None),  # engaged stakeholders unknown
    ]
    assert kpis.stakeholders(committees) == 3.0  # (3 + 5 + 1) / 3 accounts
    assert kpis.penetration(committees) == 1.5  # (1 + 2) / 2 accounts scored
    assert kpis.stakeholders([]) is None
    assert kpis.penetration([kpis.Committee(contacts=2, engaged=None)]) is None
