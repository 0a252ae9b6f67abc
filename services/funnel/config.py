"""The funnel's configuration: the ICP, the fit threshold, the windows and the tier limits.

Immutable and built once by the shell (``load_funnel_config``), then passed down to the pure
functions. ``version`` is stamped on every ``StageChanged`` / ``TierChanged`` so that a
change of rules can be told apart in the history.
"""

from __future__ import annotations

import json
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, model_validator


class _Config(BaseModel):
    """Base of the configuration models: immutable, and typos are errors, not silence."""

    model_config = ConfigDict(frozen=True, extra="forbid")


class ValuesCriterion(_Config):
    """Matches when the account's value contains one of ``values`` (see ``fit``)."""

    values: tuple[str, ...] = ()
    weight: float = Field(default=0.0, ge=0)


class RangeCriterion(_Config):
    """Matches when the account's number lies in ``[min, max]`` (a missing bound is open)."""

    min: float | None = None
    max: float | None = None
    weight: float = Field(default=0.0, ge=0)


def _default_industries() -> ValuesCriterion:
    values = ("software", "saas", "fintech", "internet", "information technology")
    return ValuesCriterion(values=values, weight=25)


def _default_countries() -> ValuesCriterion:
    values = ("us", "usa", "united states", "ca", "canada", "gb", "uk", "united kingdom")
    return ValuesCriterion(values=(*values, "de", "germany"), weight=15)


def _default_technologies() -> ValuesCriterion:
    values = ("salesforce", "hubspot", "marketo", "sap", "netsuite", "oracle", "dynamics")
    return ValuesCriterion(values=values, weight=10)


def _default_funding() -> ValuesCriterion:
    rounds = tuple(f"series {letter}" for letter in "abcdefg")
    values = ("funded", "seed", *rounds, "growth", "venture", "private equity", "public", "ipo")
    return ValuesCriterion(values=values, weight=10)


class IcpConfig(_Config):
    """The ideal customer profile as weighted criteria; weights need not add up to 100.

    The default describes a B2B SaaS vendor: software / SaaS / fintech companies in the US,
    Canada, the UK or Germany, 50 to 5,000 employees, revenue of $5M or more, running a CRM
    or ERP, funded, with a customer base of their own.
    """

    industries: ValuesCriterion = Field(default_factory=_default_industries)
    countries: ValuesCriterion = Field(default_factory=_default_countries)
    employees: RangeCriterion = RangeCriterion(min=50, max=5000, weight=20)
    annual_revenue: RangeCriterion = RangeCriterion(min=5_000_000, weight=15)
    technologies: ValuesCriterion = Field(default_factory=_default_technologies)
    funding: ValuesCriterion = Field(default_factory=_default_funding)
    customer_count: RangeCriterion = RangeCriterion(min=100, weight=5)


class FunnelConfig(_Config):
    """Everything the funnel rules depend on besides the events themselves."""

    version: str = Field(default="funnel-1", min_length=1, max_length=64)
    icp: IcpConfig = Field(default_factory=IcpConfig)
    fit_threshold: float = Field(default=60, ge=0, le=100)
    engagement_window_days: int = Field(default=90, ge=1)
    recent_window_days: int = Field(default=30, ge=1)
    view_through_window_days: int = Field(default=7, ge=1)
    high_value_url_patterns: tuple[str, ...] = ("/pricing", "/demo", "/contact-sales")
    tier1_min_acv: float = Field(default=100_000, ge=0)
    tier2_min_acv: float = Field(default=25_000, ge=0)
    acv_per_employee: float = Field(default=100, ge=0)

    @model_validator(mode="after")
    def _tiers_ordered(self) -> FunnelConfig:
        if self.tier2_min_acv > self.tier1_min_acv:
            raise ValueError("tier2_min_acv must not exceed tier1_min_acv")
        return self


def load_funnel_config(path: Path | None) -> FunnelConfig:
    """The configuration from a JSON file (missing keys take their defaults), or defaults.

    Raises ``OSError`` when the file cannot be read, ``json.JSONDecodeError`` when it is not
    JSON and ``pydantic.ValidationError`` when a value is wrong or a key unknown.
    """
    if path is None:
        return FunnelConfig()
    return FunnelConfig.model_validate(json.loads(path.read_text(encoding="utf-8")))
