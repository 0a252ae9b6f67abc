"""ICP suggestion from retained customers: lift and support on a hand-computed example."""

from __future__ import annotations

import pytest

from services.funnel.fit import Firmographics
from services.funnel.icp_suggest import Thresholds, suggest_icp


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


def test_thresholds_and_too_little_evidence() -> None:
    icp, _ = suggest_icp(ACCOUNTS, Thresholds(min_lift=1.2))
    assert icp.countries.values == ("us",)
    with pytest.raises(ValueError, match="too few"):
        suggest_icp(ACCOUNTS[5:] + ACCOUNTS[:2])
