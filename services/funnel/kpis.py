"""Funnel KPIs over a collection of account states: the definitions of ``schemas.kpis``
applied to ``AccountState`` (by ``abm replay`` and the tests, on states in memory).

Each takes any iterable of states (filter it by tier, owner or period first to get the
KPI of that cohort) and returns plain numbers; ratios are None over an empty denominator.
"""

from __future__ import annotations

from collections.abc import Iterable

from schemas import kpis
from schemas.events import Stage
from schemas.kpis import StageConversion
from services.funnel.state import AccountState

__all__ = [
    "StageConversion",
    "pipeline_amount",
    "reached_counts",
    "stage_conversions",
    "stage_counts",
    "target_count",
    "targets_engaged_or_beyond_share",
    "targets_engaged_share",
    "tier_counts",
]


def stage_counts(states: Iterable[AccountState]) -> dict[Stage, int]:
    """Accounts currently in each stage (see ``schemas.kpis.stage_counts``)."""
    return kpis.stage_counts(state.stage for state in states)


def reached_counts(states: Iterable[AccountState]) -> dict[Stage, int]:
    """Accounts that ever reached each stage (see ``schemas.kpis.reached_counts``)."""
    return kpis.reached_counts(state.furthest_stage_rank for state in states)


def stage_conversions(states: Iterable[AccountState]) -> list[StageConversion]:
    """Conversion between consecutive stages (see ``schemas.kpis.stage_conversions``)."""
    return kpis.stage_conversions(reached_counts(states))


def target_count(states: Iterable[AccountState]) -> int:
    """Target accounts: ``is_target`` (by fit above the threshold, or explicitly)."""
    return sum(1 for state in states if state.is_target)


def tier_counts(states: Iterable[AccountState]) -> dict[int, int]:
    """Target accounts per tier (1, 2 and 3 always present)."""
    counts = dict.fromkeys((1, 2, 3), 0)
    for state in states:
        if state.is_target and state.tier is not None:
            counts[state.tier] += 1
    return counts


def targets_engaged_or_beyond_share(states: Iterable[AccountState]) -> float | None:
    """Share of the target accounts whose stage now is engaged or beyond (an account with
    an opportunity, or a customer, counts) / all targets: a snapshot of the funnel, not
    the KPI ``engaged_share`` (targets that engaged within a period, see
    ``schemas.kpis.engaged_share``), which the states alone cannot tell."""
    return kpis.share_at_or_beyond((s.stage for s in states if s.is_target), Stage.ENGAGED)


# The former name: it read as the KPI ``engaged_share``, which this is not.
targets_engaged_share = targets_engaged_or_beyond_share


def pipeline_amount(states: Iterable[AccountState]) -> float:
    """Pipeline (see ``schemas.kpis.pipeline``): the open opportunities' amounts of the
    target accounts, whatever their stage."""
    return kpis.pipeline((state.is_target, state.open_opportunities) for state in states)
