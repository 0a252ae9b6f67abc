"""Fit scoring and the funnel configuration."""

from __future__ import annotations

import dataclasses
import json
from pathlib import Path

import pytest
from pydantic import ValidationError

from services.funnel.config import (
    FunnelConfig,
    IcpConfig,
    RangeCriterion,
    ValuesCriterion,
    load_funnel_config,
)
from services.funnel.fit import Firmographics, FitContribution, normalize_words, score_fit

DEFAULT_ICP = IcpConfig()


def test_hand_computed_example_on_the_default_icp() -> None:
    # Weights: industry 25, country 15, employees 20, revenue 15, tech 10, funding 10,
    # customer_count 5 -> total 100, so points = weights of the matched criteria.
    firm = Firmographics(
        industry="Computer Software",  # contains "software"
        country="France",  # not in the ICP
        employees=200,  # 50..5000
        annual_revenue=2_000_000,  # below 5M
        technologies=("Google Analytics", "HubSpot"),  # hubspot
        funding=None,  # unknown never matches
        customer_count=150,  # >= 100
    )
    fit = score_fit(firm, DEFAULT_ICP)
    assert fit.score == 60.0
    assert fit.contributions == (
        FitContribution(criterion="industry", matched=True, weight=25, points=25.0),
        FitContribution(criterion="country", matched=False, weight=15, points=0.0),
        FitContribution(criterion="employees", matched=True, weight=20, points=20.0),
        FitContribution(criterion="annual_revenue", matched=False, weight=15, points=0.0),
        FitContribution(criterion="technologies", matched=True, weight=10, points=10.0),
        FitContribution(criterion="funding", matched=False, weight=10, points=0.0),
        FitContribution(criterion="customer_count", matched=True, weight=5, points=5.0),
    )


def test_perfect_account_scores_100() -> None:
    firm = Firmographics(
        industry="SaaS",
        country="US",
        employees=5000,  # upper bound is inclusive
        annual_revenue=5_000_000,  # lower bound is inclusive
        technologies=("NetSuite",),
        funding="Series-B",  # punctuation ignored: "series b"
        customer_count=100,
    )
    assert score_fit(firm, DEFAULT_ICP).score == 100.0


def test_unknown_account_scores_zero_with_every_criterion_listed() -> None:
    fit = score_fit(Firmographics(), DEFAULT_ICP)
    assert fit.score == 0.0
    assert [c.criterion for c in fit.contributions] == [
        "industry",
        "country",
        "employees",
        "annual_revenue",
        "technologies",
        "funding",
        "customer_count",
    ]
    assert not any(c.matched for c in fit.contributions)


def test_weights_are_normalised_to_100_points() -> None:
    icp = IcpConfig(
        industries=ValuesCriterion(values=("fintech",), weight=2),
        countries=ValuesCriterion(values=("de",), weight=1),
        employees=RangeCriterion(min=10, weight=0),
        annual_revenue=RangeCriterion(),
        technologies=ValuesCriterion(),
        funding=ValuesCriterion(),
        customer_count=RangeCriterion(),
    )
    fit = score_fit(Firmographics(industry="Fintech", country="FR", employees=50), icp)
    points = {c.criterion: c.points for c in fit.contributions}
    assert points["industry"] == 66.67  # 2 / 3 * 100
    assert points["country"] == 0.0
    assert points["employees"] == 0.0  # matched, but weighs nothing
    assert fit.score == 66.67


def test_a_configured_maturity_criterion_contributes_its_weight() -> None:
    # Weights: industry 80, maturity 20, the rest 0 -> total 100, so points = weights.
    icp = IcpConfig(
        industries=ValuesCriterion(values=("software",), weight=80),
        countries=ValuesCriterion(),
        employees=RangeCriterion(),
        annual_revenue=RangeCriterion(),
        technologies=ValuesCriterion(),
        funding=ValuesCriterion(),
        customer_count=RangeCriterion(),
        maturity=ValuesCriterion(values=("growth", "established"), weight=20),
    )
    growing = score_fit(Firmographics(industry="Software", maturity="Growth"), icp)
    assert growing.score == 100.0
    assert growing.contributions[-1] == FitContribution(
        criterion="maturity", matched=True, weight=20, points=20.0
    )
    young = score_fit(Firmographics(industry="Software", maturity="startup"), icp)
    assert young.score == 80.0
    assert young.contributions[-1] == FitContribution(
        criterion="maturity", matched=False, weight=20, points=0.0
    )
    unknown = score_fit(Firmographics(industry="Software"), icp)
    assert unknown.score == 80.0 and not unknown.contributions[-1].matched


def test_maturity_is_absent_by_default_and_loads_from_json(tmp_path: Path) -> None:
    assert DEFAULT_ICP.maturity is None
    fit = score_fit(Firmographics(maturity="enterprise"), DEFAULT_ICP)
    assert "maturity" not in {c.criterion for c in fit.contributions}
    path = tmp_path / "funnel.json"
    path.write_text(json.dumps({"icp": {"maturity": {"values": ["enterprise"], "weight": 5}}}))
    icp = load_funnel_config(path).icp
    assert icp.maturity == ValuesCriterion(values=("enterprise",), weight=5)
    assert icp.industries == DEFAULT_ICP.industries


def test_values_match_whole_words_only() -> None:
    icp = IcpConfig(countries=ValuesCriterion(values=("us",), weight=1))
    assert score_fit(Firmographics(country="US"), icp).contributions[1].matched
    assert not score_fit(Firmographics(country="Russia"), icp).contributions[1].matched


def test_normalize_words() -> None:
    assert normalize_words("  Series-B ") == "series b"
    assert normalize_words("Information_Technology & Services") == (
        "information technology services"
    )


def test_load_defaults_without_a_file() -> None:
    config = load_funnel_config(None)
    assert config == FunnelConfig()
    assert config.version == "funnel-1"
    assert config.fit_threshold == 60
    assert config.engagement_window_days == 90
    assert config.recent_window_days == 30
    assert "/pricing" in config.high_value_url_patterns


def test_load_partial_json_file(tmp_path: Path) -> None:
    path = tmp_path / "funnel.json"
    document = {
        "version": "funnel-7",
        "fit_threshold": 70,
        "icp": {"countries": {"values": ["fr"], "weight": 30}},
        "high_value_url_patterns": ["/tarifs"],
    }
    path.write_text(json.dumps(document))
    config = load_funnel_config(path)
    assert config.version == "funnel-7"
    assert config.fit_threshold == 70
    assert config.icp.countries == ValuesCriterion(values=("fr",), weight=30)
    assert config.icp.industries == IcpConfig().industries
    assert config.high_value_url_patterns == ("/tarifs",)


def test_load_rejects_unknown_keys(tmp_path: Path) -> None:
    path = tmp_path / "funnel.json"
    path.write_text(json.dumps({"fit_treshold": 70}))
    with pytest.raises(ValidationError):
        load_funnel_config(path)


def test_tier_thresholds_must_be_ordered() -> None:
    with pytest.raises(ValidationError):
        FunnelConfig(tier1_min_acv=10, tier2_min_acv=20)


def test_config_is_immutable() -> None:
    config = FunnelConfig()
    with pytest.raises(dataclasses.FrozenInstanceError):
        config.fit_threshold = 10  # type: ignore[misc]
