"""The funnel's configuration: the ICP, the fit threshold, the windows, the tier limits and
the weights of the engagement and relationship scores.

Immutable and built once by the shell (``load_funnel_config``), then passed down to the pure
functions. ``version`` is stamped on every ``StageChanged`` / ``TierChanged`` so that a
change of rules can be told apart in the history.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

from pydantic import ConfigDict, Field, model_validator
from pydantic.dataclasses import dataclass

from services.kit.records import Frozen

# Typos are errors, not silence. Records, not models: the rules read the configuration on
# every event (see ``services.kit.records``).
_CONFIG = ConfigDict(extra="forbid")


@dataclass(frozen=True, config=_CONFIG)
class ValuesCriterion(Frozen):
    """Matches when the account's value contains one of ``values`` (see ``fit``)."""

    values: tuple[str, ...] = ()
    weight: float = Field(default=0.0, ge=0)


@dataclass(frozen=True, config=_CONFIG)
class RangeCriterion(Frozen):
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


@dataclass(frozen=True, config=_CONFIG)
class IcpConfig(Frozen):
    """The ideal customer profile as weighted criteria; weights need not add up to 100.

    The default describes a B2B SaaS vendor: software / SaaS / fintech companies in the US,
    Canada, the UK or Germany, 50 to 5,000 employees, revenue of $5M or more, running a CRM
    or ERP, funded, with a customer base of their own. ``maturity`` (typically "startup",
    "growth", "established" or "enterprise") is optional and absent by default: without it
    the criterion neither scores nor appears in the fit breakdown.
    """

    industries: ValuesCriterion = Field(default_factory=_default_industries)
    countries: ValuesCriterion = Field(default_factory=_default_countries)
    employees: RangeCriterion = RangeCriterion(min=50, max=5000, weight=20)
    annual_revenue: RangeCriterion = RangeCriterion(min=5_000_000, weight=15)
    technologies: ValuesCriterion = Field(default_factory=_default_technologies)
    funding: ValuesCriterion = Field(default_factory=_default_funding)
    customer_count: RangeCriterion = RangeCriterion(min=100, weight=5)
    maturity: ValuesCriterion | None = None


@dataclass(frozen=True, config=_CONFIG)
class EngagementWeights(Frozen):
    """Points of one activity in the engagement score (before the contact's role multiplier).

    One event is one activity, the most specific one: a high-value page view scores as such
    and not also as a page view; a view-through visit that is not high-value scores as a
    view-through visit. The defaults rank what an ABM team reads as buying interest: a
    meeting or a form fill says much more than a blog visit.
    """

    page_view: float = Field(default=1, ge=0)
    high_value_page_view: float = Field(default=5, ge=0)
    view_through_visit: float = Field(default=2, ge=0)
    ad_click: float = Field(default=3, ge=0)
    chat: float = Field(default=4, ge=0)
    email_click: float = Field(default=3, ge=0)
    email_reply: float = Field(default=8, ge=0)
    email_inbound: float = Field(default=6, ge=0)
    meeting: float = Field(default=15, ge=0)
    form: float = Field(default=10, ge=0)


ROLE_NAME = r"^[a-z][a-z0-9_]{0,39}$"
UNKNOWN_ROLE = "unknown"


def _default_role_weights() -> dict[str, float]:
    return {"decision_maker": 2.0, "champion": 1.5, "influencer": 1.2, "user": 1.0}


def _default_title_keywords() -> dict[str, tuple[str, ...]]:
    return {
        "decision_maker": (
            *("chief", "ceo", "cfo", "cto", "cio", "cmo", "coo", "cro", "ciso", "cdo"),
            *("president", "vice president", "vp", "svp", "evp", "founder"),
            *("general manager", "managing director"),
        ),
        "champion": ("director", "head"),
        "influencer": ("manager", "lead", "architect", "principal"),
        "user": (
            *("engineer", "developer", "analyst", "specialist", "associate", "coordinator"),
            *("administrator", "admin", "representative", "consultant"),
        ),
    }


@dataclass(frozen=True, config=_CONFIG)
class EngagementConfig(Frozen):
    """The engagement score: weighted activity within a window, by the contact's role.

    ``role_weights`` multiplies the points of an activity whose contact has that role (the
    highest one for a meeting); an activity without a contact, or with a contact of unknown
    role, counts once (1.0). A contact's role is the ``role`` of its ``contact_identified``
    when it names a configured role, else the role whose ``title_keywords`` match its title
    (or its free-text role), the highest multiplier winning. Keywords match whole words,
    case-insensitively: "cto" matches "CTO" but not "Director".
    ``window_days`` defaults to ``recent_window_days``; it is also the window in which a
    contact counts as an engaged stakeholder.
    """

    window_days: int | None = Field(default=None, ge=1, le=365)
    weights: EngagementWeights = EngagementWeights()
    role_weights: dict[str, float] = Field(default_factory=_default_role_weights)
    title_keywords: dict[str, tuple[str, ...]] = Field(default_factory=_default_title_keywords)

    @model_validator(mode="after")
    def _roles_known(self) -> EngagementConfig:
        for role, weight in self.role_weights.items():
            if not re.match(ROLE_NAME, role) or role == UNKNOWN_ROLE:
                raise ValueError(f"role name {role!r}: lowercase letters, digits, _")
            if weight < 0:
                raise ValueError(f"role weight of {role!r} must not be negative")
        unknown = sorted(set(self.title_keywords) - set(self.role_weights))
        if unknown:
            raise ValueError(f"title_keywords name roles without a weight: {unknown}")
        return self


@dataclass(frozen=True, config=_CONFIG)
class RelationshipWeights(Frozen):
    """Points of each component of the relationship score (scaled so the total is 100)."""

    two_way: float = Field(default=20, ge=0)
    replies: float = Field(default=20, ge=0)
    meetings: float = Field(default=25, ge=0)
    contacts: float = Field(default=15, ge=0)
    recency: float = Field(default=20, ge=0)


@dataclass(frozen=True, config=_CONFIG)
class RelationshipConfig(Frozen):
    """The relationship score (0-100) from email and meeting patterns, and its trend.

    Within the last ``window_days`` (see ``relationship``): two-way email balance, replies
    received (full at ``replies_for_full``), meetings (full at ``meetings_for_full``),
    distinct contacts involved (full at ``contacts_for_full``), and recency of the last
    two-way touch (full today, none ``window_days`` ago). The trend compares the score now
    with the score ``trend_days`` ago: a rise of ``trend_threshold`` points or more is
    "improving", a fall as large "declining", anything else "steady".
    """

    window_days: int = Field(default=90, ge=1, le=365)
    trend_days: int = Field(default=30, ge=1, le=365)
    trend_threshold: float = Field(default=5, ge=0, le=100)
    replies_for_full: int = Field(default=4, ge=1)
    meetings_for_full: int = Field(default=3, ge=1)
    contacts_for_full: int = Field(default=4, ge=1)
    weights: RelationshipWeights = RelationshipWeights()

    @model_validator(mode="after")
    def _some_weight(self) -> RelationshipConfig:
        if sum(self.weights.model_dump().values()) <= 0:
            raise ValueError("the relationship weights must not all be 0")
        return self


@dataclass(frozen=True, config=_CONFIG)
class FunnelConfig(Frozen):
    """Everything the funnel rules depend on besides the events themselves."""

    version: str = Field(default="funnel-1", min_length=1, max_length=64)
    icp: IcpConfig = Field(default_factory=IcpConfig)
    fit_threshold: float = Field(default=60, ge=0, le=100)
    engagement_window_days: int = Field(default=90, ge=1)
    recent_window_days: int = Field(default=30, ge=1)
    view_through_window_days: int = Field(default=7, ge=1)
    # Bounds one tick's work (and transaction); the rest expire on the next ticks.
    max_expiries_per_tick: int = Field(default=2000, ge=1)
    high_value_url_patterns: tuple[str, ...] = ("/pricing", "/demo", "/contact-sales")
    tier1_min_acv: float = Field(default=100_000, ge=0)
    tier2_min_acv: float = Field(default=25_000, ge=0)
    acv_per_employee: float = Field(default=100, ge=0)
    engagement: EngagementConfig = Field(default_factory=EngagementConfig)
    relationship: RelationshipConfig = Field(default_factory=RelationshipConfig)

    @property
    def engagement_score_window_days(self) -> int:
        """The window of the engagement score and of engaged stakeholders."""
        return self.engagement.window_days or self.recent_window_days

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
