"""Fit: how well one account's firmographics match the ICP, as an explainable 0-100 score.

Each ICP criterion with weight ``w`` is worth ``w / sum(all weights) * 100`` points, earned
in full when it matches and not at all otherwise; the score is the sum of the points
earned, so the contributions always add up to the score (up to rounding to 2 decimals).

Matching, case-insensitive and ignoring punctuation (``"Series-B"`` is ``"series b"``):

- values criteria (industry, country, funding, maturity): the account's value contains one of the
  configured values as whole words (``"Computer Software"`` matches ``"software"``);
- technologies: any of the account's technologies matches any configured value that way;
- range criteria (employees, annual revenue, customer count): the number lies within the
  bounds, both inclusive.

An unknown attribute never matches, so an account nobody described scores 0. The maturity
criterion is optional: when the ICP has none it is left out of the breakdown altogether.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from functools import lru_cache

from pydantic.dataclasses import dataclass

from services.funnel.config import IcpConfig, RangeCriterion, ValuesCriterion
from services.kit.records import RECORD_CONFIG, Frozen

_NON_WORD = re.compile(r"[^0-9a-z]+")


@dataclass(frozen=True, config=RECORD_CONFIG)
class Firmographics(Frozen):
    """What is known about a company; ``None`` means unknown."""

    name: str | None = None
    industry: str | None = None
    country: str | None = None
    employees: int | None = None
    annual_revenue: float | None = None
    technologies: tuple[str, ...] = ()
    funding: str | None = None
    customer_count: int | None = None
    maturity: str | None = None
    owner: str | None = None


@dataclass(frozen=True, config=RECORD_CONFIG)
class FitContribution(Frozen):
    """One ICP criterion's part in a fit score."""

    criterion: str
    matched: bool
    weight: float
    points: float


@dataclass(frozen=True, config=RECORD_CONFIG)
class FitScore(Frozen):
    """A fit score 0-100 and the contribution of every criterion to it."""

    score: float = 0.0
    contributions: tuple[FitContribution, ...] = ()


def score_fit(firmographics: Firmographics, icp: IcpConfig) -> FitScore:
    """Score ``firmographics`` against ``icp`` (see the module docstring for the rules)."""
    matches = _matches(firmographics, icp)
    total = sum(weight for _, _, weight in matches)
    contributions = tuple(
        FitContribution(
            criterion=name,
            matched=matched,
            weight=weight,
            points=round(weight / total * 100, 2) if matched and total > 0 else 0.0,
        )
        for name, matched, weight in matches
    )
    score = min(100.0, round(sum(c.points for c in contributions), 2))
    return FitScore(score=score, contributions=contributions)


def _matches(firm: Firmographics, icp: IcpConfig) -> list[tuple[str, bool, float]]:
    """(criterion, matched, weight) for every criterion, in a fixed order."""
    matches = [
        ("industry", _matches_values([firm.industry], icp.industries), icp.industries.weight),
        ("country", _matches_values([firm.country], icp.countries), icp.countries.weight),
        ("employees", _in_range(firm.employees, icp.employees), icp.employees.weight),
        (
            "annual_revenue",
            _in_range(firm.annual_revenue, icp.annual_revenue),
            icp.annual_revenue.weight,
        ),
        (
            "technologies",
            _matches_values(firm.technologies, icp.technologies),
            icp.technologies.weight,
        ),
        ("funding", _matches_values([firm.funding], icp.funding), icp.funding.weight),
        (
            "customer_count",
            _in_range(firm.customer_count, icp.customer_count),
            icp.customer_count.weight,
        ),
    ]
    if icp.maturity is not None:
        matches.append(
            ("maturity", _matches_values([firm.maturity], icp.maturity), icp.maturity.weight)
        )
    return matches


def normalize_words(text: str) -> str:
    """Lower-case words separated by single spaces: ``"Series-B "`` -> ``"series b"``."""
    return " ".join(_NON_WORD.split(text.casefold())).strip()


def _matches_values(candidates: Iterable[str | None], criterion: ValuesCriterion) -> bool:
    wanted = _wanted(criterion.values)
    for candidate in candidates:
        if candidate is None:
            continue
        padded = f" {normalize_words(candidate)} "
        if any(value in padded for value in wanted):
            return True
    return False


@lru_cache(maxsize=64)
def _wanted(values: tuple[str, ...]) -> tuple[str, ...]:
    """A criterion's values normalised and padded, once per configuration (they are fixed)."""
    return tuple(f" {normalized} " for v in values if (normalized := normalize_words(v)))


def _in_range(value: float | None, criterion: RangeCriterion) -> bool:
    if value is None:
        return False
    if criterion.min is not None and value < criterion.min:
        return False
    return criterion.max is None or value <= criterion.max
