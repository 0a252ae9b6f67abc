"""Funnel KPIs over a collection of account states: pure, one function per KPI.

Each takes any iterable of ``AccountState`` (filter it by tier, owner or period first to
get the KPI of that cohort) and returns plain numbers. Shares are ratios in [0, 1], and
``None`` when their denominator is 0, so that "no data" is never shown as 0 %.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from itertools import pairwise

from schemas.events import STAGE_ORDER, Stage
from services.funnel.state import AccountState


@dataclass(frozen=True, slots=True)
class StageConversion:
    """Conversion from one stage to the next: ``reached_to / reached_from``."""

    from_stage: Stage
    to_stage: Stage
    reached_from: int
    reached_to: int
    rate: float | None


def stage_counts(states: Iterable[AccountState]) -> dict[Stage, int]:
    """Accounts currently in each stage (every stage present, 0 when empty).

    Accounts without a stage (not targets, not customers) are not counted.
    """
    counts = dict.fromkeys(STAGE_ORDER, 0)
    for state in states:
        if state.stage is not None:
            counts[state.stage] += 1
    return counts


def reached_counts(states: Iterable[AccountState]) -> dict[Stage, int]:
    """Accounts that ever reached each stage: reached(N) = #{furthest_stage_rank >= N}.

    An account that went further counts as having reached every earlier stage, even if
    it skipped one (an opportunity opened by sales before any engagement) or has since
    moved back down (a lost opportunity, a churn).
    """
    ranks = [state.furthest_stage_rank for state in states]
    return {stage: sum(1 for rank in ranks if rank >= stage.rank) for stage in STAGE_ORDER}


def stage_conversions(states: Iterable[AccountState]) -> list[StageConversion]:
    """Conversion between consecutive stages: reached(N+1) / reached(N), None if 0 / 0.

    One entry per pair, in funnel order: target -> engaged, ..., retention -> expansion.
    """
    reached = reached_counts(states)
    return [
        StageConversion(
            from_stage=current,
            to_stage=following,
            reached_from=reached[current],
            reached_to=reached[following],
            rate=reached[following] / reached[current] if reached[current] else None,
        )
        for current, following in pairwise(STAGE_ORDER)
    ]


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


def targets_engaged_share(states: Iterable[AccountState]) -> float | None:
    """% of target accounts engaged = engaged targets / all targets, as a ratio.

    "Engaged" means currently at stage engaged or beyond (an account with an opportunity,
    or a customer, is engaged too). None when there is no target account. The share not
    engaged is its complement, ``1 - share``.
    """
    targets = [state for state in states if state.is_target]
    if not targets:
        return None
    engaged = sum(1 for state in targets if _at_or_beyond(state, Stage.ENGAGED))
    return engaged / len(targets)


def pipeline_amount(states: Iterable[AccountState]) -> float:
    """Pipeline: total amount of the open opportunities of target accounts."""
    return sum(state.pipeline for state in states if state.is_target)


def _at_or_beyond(state: AccountState, stage: Stage) -> bool:
    return state.stage is not None and state.stage.rank >= stage.rank
