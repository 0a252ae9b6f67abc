"""ICP suggestion from retained customers: lift and support on a hand-computed example."""

from __future__ import annotations

import pytest

from schemas.events import Stage
from services.funnel.config import ValuesCriterion
from services.funnel.fit import Firmographics
from services.funnel.icp_cli import learning_pair
from services.funnel.icp_suggest import Thresholds, suggest_icp
from services.funnel.state import AccountState
from tests.unit.funnel_scenarios import ICP_FIT, ev, run


def company(industry: str, country: str, employees: int) -> Firmographics:
    return Firmographics(industry=industry, country=country, employees=employees)


ACCOUNTS = (
    [(company("Software", "US", 300), True)] * 5
    + [(company("software", "US", 20), False)] * 2
    + [(company("retail", "US", 20), False)]
    + [(company("retail", "DE", 20), False)] * 2
)


def test_over_represented_values_become_weighted_criteria() -> None:
    icp, evidence = suggest_icp(ACCOUNTS)
    # software: support 5/5, base 7/10 -> lift 1.43; US: 5/5 vs 8/10 -> 1.25 (below 1.3);
    # employees 200-1000: 5/5 vs 5/10 -> 2.0.
    lifts = {(e.attribute, e.value): round(e.lift, 2) for e in evidence}
    assert lifts[("industry", "software")] == 1.43 and lifts[("country", "us")] == 1.25
    assert icp.industries.values == ("software",) and icp.countries.values == ()
    assert (icp.employees.min, icp.employees.max) == (200, 1000)
    assert icp.industries.weight == pytest.approx(100 * 1.4286 / (1.4286 + 2.0), abs=0.1)
    assert icp.countries.weight == 0 and icp.annual_revenue.weight == 0
    assert evidence[0].attribute == "employees"  # strongest lift first


def test_an_over_represented_maturity_becomes_a_criterion() -> None:
    def firm(maturity: str) -> Firmographics:
        return Firmographics(industry="software", maturity=maturity)

    accounts = (
        [(firm("established"), True)] * 4
        + [(firm("growth"), True)]
        + [(firm("established"), False)]
        + [(firm("startup"), False)] * 4
    )
    icp, evidence = suggest_icp(accounts)
    # established: support 4/5 = 0.8, base 5/10 = 0.5 -> lift 1.6 (kept);
    # growth: support 1/5 = 0.2, base 1/10 -> lift 2.0 (kept: support 0.2 is enough);
    # industry software: 5/5 vs 10/10 -> lift 1.0 (dropped).
    lifts = {(e.attribute, e.value): round(e.lift, 2) for e in evidence}
    assert lifts[("maturity", "established")] == 1.6 and lifts[("maturity", "growth")] == 2.0
    assert icp.maturity == ValuesCriterion(values=("established", "growth"), weight=100.0)
    assert icp.industries.weight == 0
    assert suggest_icp(ACCOUNTS)[0].maturity is None  # no maturity known: no criterion


def test_thresholds_and_too_little_evidence() -> None:
    icp, _ = suggest_icp(ACCOUNTS, Thresholds(min_lift=1.2))
    assert icp.countries.values == ("us",)
    with pytest.raises(ValueError, match="too few"):
        suggest_icp(ACCOUNTS[5:] + ACCOUNTS[:2])


def test_the_learning_set_is_the_accounts_that_renewed() -> None:
    """Two deal cycles means a renewal: an upsell (a second deal won, or a subscription
    expanded) reaches expansion, past retention, in one cycle."""
    signed = [
        ev("account_upserted", 0, **ICP_FIT),
        ev("opportunity_won", 10, opportunity_id="o1", amount=50_000),
    ]
    upsold, _ = run([*signed, ev("opportunity_won", 100, opportunity_id="o2", amount=9_000)])
    expanded, _ = run([*signed, ev("subscription_expanded", 100, amount=9_000)])
    renewed, _ = run([*signed, ev("subscription_renewed", 375, amount=50_000)])
    assert upsold is not None and expanded is not None and renewed is not None
    assert upsold.stage is expanded.stage is Stage.EXPANSION
    assert upsold.furthest_stage_rank > Stage.RETENTION.rank  # yet never renewed
    assert (upsold.renewals, expanded.renewals, renewed.renewals) == (0, 0, 1)
    retained = [learning_pair(state)[1] for state in (upsold, expanded, renewed)]
    assert retained == [False, False, True]


def test_states_stored_before_renewals_were_counted() -> None:
    """Only a renewal adds renewal revenue: such an old state renewed at least once."""
    signed = [ev("opportunity_won", 10, opportunity_id="o1", amount=50_000)]
    renewed, _ = run([*signed, ev("subscription_renewed", 375, amount=50_000)])
    upsold, _ = run([*signed, ev("subscription_expanded", 100, amount=9_000)])
    assert renewed is not None and upsold is not None
    old = [s.model_dump(mode="json", exclude={"renewals"}) for s in (renewed, upsold)]
    assert [AccountState.model_validate(document).renewals for document in old] == [1, 0]
