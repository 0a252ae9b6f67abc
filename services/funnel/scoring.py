"""Keeping ``AccountState.scores`` equal to the scores computed from the state at its clock.

Every score is a function of its buckets (or the contacts) and of the clock's UTC day only,
so a part is recomputed when its inputs changed, the day moved or the configuration
version changed, and kept as is otherwise; the engagement score is moved on from the
window counts it keeps. The result is the same as recomputing all of it (``rescore``), at a
fraction of the cost on the hot path (most events are page views). A configuration change
is noticed by its ``version``: change the version when changing weights or windows.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date
from typing import Any

from services.funnel.committee import committee
from services.funnel.config import FunnelConfig
from services.funnel.engagement import (
    engagement_score,
    moved_counts,
    plus_one,
    scored,
    scored_one_more,
)
from services.funnel.relationship import relationship_score
from services.funnel.scores import EngagementScore, Scores, scores_result
from services.funnel.state import AccountState, day_of, days_between


def refreshed_scores(
    state: AccountState,
    changes: Mapping[str, Any],
    config: FunnelConfig,
    engagement_added: tuple[date, str] | None = None,
) -> Scores:
    """The scores of ``state`` once ``changes`` (a ``model_copy`` update) are applied,
    reusing those of ``state`` whose inputs the changes leave alone.

    ``engagement_added``: the day and bucket key of the one event the changes add to the
    engagement buckets, if that is all they do to them.
    """
    scores = state.scores
    today = day_of(changes.get("clock", state.clock))
    same_config = scores["config_version"] == config.version
    fresh = same_config and scores["as_of"] == today
    relationship_days = changes.get("relationship_days", state.relationship_days)
    contacts = changes.get("contacts", state.contacts)
    engagement = _engagement(state, changes, config, today, engagement_added, same_config)
    relationship = scores["relationship"]
    if not fresh or relationship_days is not state.relationship_days:
        relationship = relationship_score(relationship_days, today, config)
    members = scores["committee"]
    if not fresh or contacts is not state.contacts:
        members = committee(contacts, today, config)
    if (
        fresh
        and engagement is scores["engagement"]
        and relationship is scores["relationship"]
        and members is scores["committee"]
    ):
        return scores
    return scores_result(today, config.version, engagement, relationship, members)


def _engagement(
    state: AccountState,
    changes: Mapping[str, Any],
    config: FunnelConfig,
    today: date,
    added: tuple[date, str] | None,
    same_config: bool,
) -> EngagementScore:
    """The engagement score after ``changes``: from the window counts kept in the score
    when they can be moved on (same configuration, a known day), else from the buckets."""
    days = changes.get("engagement_days", state.engagement_days)
    current = state.scores["engagement"]
    since = state.scores["as_of"]
    if (
        since is None
        or since > today
        or not same_config
        or current["window_days"] != config.engagement_score_window_days
        or (added is None and days is not state.engagement_days)
    ):
        return engagement_score(days, today, config)
    key = added[1] if added is not None and _in_window(added[0], today, config) else None
    if since == today:  # the hot path: one more event today, or none in the window
        return current if key is None else scored_one_more(current, key, config)
    counts = moved_counts(current["counts"], state.engagement_days, since, today, config)
    return scored(counts if key is None else plus_one(counts, key), config)


def _in_window(day: date, today: date, config: FunnelConfig) -> bool:
    return 0 <= days_between(day, today) < config.engagement_score_window_days


def rescore(state: AccountState, config: FunnelConfig) -> AccountState:
    """``state`` with every score recomputed from scratch at its clock."""
    today = state.today
    scores = scores_result(
        today,
        config.version,
        engagement_score(state.engagement_days, today, config),
        relationship_score(state.relationship_days, today, config),
        committee(state.contacts, today, config),
    )
    return state.model_copy(update={"scores": scores})
