"""Goldilocks tiers: which cohort a target account belongs to, and which rule put it there.

Evaluated after every event, at the account's clock (the latest event time seen). The
first branch that holds wins; its name is the ``rule`` of the ``TierChanged``:

==================================  ====  ==================================================
rule                                tier  condition
==================================  ====  ==================================================
``not_target``                      None  the account is not a target
``tier3_below_fit``                 3     explicitly targeted but fit < ``fit_threshold``
``tier1_just_right``                1     high fit, ACV >= ``tier1_min_acv``, recent intent
                                          and recent engagement
``tier2_recent_intent``             2     high fit and recent intent (without tier 1's
                                          engagement or ACV)
``tier2_engaged_acv``               2     high fit, recent engagement and
                                          ACV >= ``tier2_min_acv``, no recent intent
``tier3_always_on``                 3     high fit, otherwise
==================================  ====  ==================================================

- high fit: ``fit.score >= fit_threshold``;
- recent intent: an active surge, a surge seen (start or end) within
  ``recent_window_days``, or a high-value page visit (first-party intent) within it;
- recent engagement: an engagement within ``recent_window_days``;
- ACV: the open pipeline if any, else the revenue won, else an estimate of
  ``employees * acv_per_employee``, else 0.

``tier2_engaged_acv`` goes beyond the bare table in domain.md on purpose: an engaged
account worth a medium or large deal should not be left to always-on programs ("too
small") only because no surge was detected.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.funnel.config import FunnelConfig
from services.funnel.state import AccountState, Tier, within


@dataclass(frozen=True, slots=True)
class TierAssessment:
    tier: Tier | None
    rule: str


def estimate_acv(state: AccountState, config: FunnelConfig) -> float:
    """The account's ACV: open pipeline, else revenue won, else a size-based estimate."""
    if state.pipeline > 0:
        return state.pipeline
    if state.won_revenue > 0:
        return state.won_revenue
    employees = state.firmographics.employees
    return employees * config.acv_per_employee if employees is not None else 0.0


def has_recent_intent(state: AccountState, config: FunnelConfig) -> bool:
    """An active or recent surge, or a recent high-value page visit."""
    days = config.recent_window_days
    return state.surged_within(days) or within(state.last_high_value_visit_at, state.clock, days)


def assess_tier(state: AccountState, config: FunnelConfig) -> TierAssessment:
    """The tier of ``state`` and the rule that decided it (see the module docstring)."""
    if not state.is_target:
        return TierAssessment(None, "not_target")
    if state.fit.score < config.fit_threshold:
        return TierAssessment(3, "tier3_below_fit")
    acv = estimate_acv(state, config)
    intent = has_recent_intent(state, config)
    engaged = state.engaged_within(config.recent_window_days)
    if intent and engaged and acv >= config.tier1_min_acv:
        return TierAssessment(1, "tier1_just_right")
    if intent:
        return TierAssessment(2, "tier2_recent_intent")
    if engaged and acv >= config.tier2_min_acv:
        return TierAssessment(2, "tier2_engaged_acv")
    return TierAssessment(3, "tier3_always_on")
