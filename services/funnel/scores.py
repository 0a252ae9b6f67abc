"""The scores the funnel keeps on each account, as stored in its state (and read by the API).

They are computed from the state's buckets at the account's clock (see ``engagement``,
``relationship`` and ``committee``) and refreshed by ``scoring`` whenever a signal is
recorded, so a reader gets them without knowing the rules. ``as_of`` says at which day.

They are typed dictionaries rather than models: they are rebuilt on the hot path (most
events are page views), where a plain ``dict`` costs a fraction of a model. Validation
(``canonical``) puts every key in its declared order and sorts the free mappings, so a
document whose keys were reordered in storage loads to the same JSON; the builders below
produce that order too.
"""

from __future__ import annotations

from datetime import date
from typing import Any, Literal

from typing_extensions import TypedDict

Trend = Literal["improving", "declining", "steady"]


class EngagementScore(TypedDict):
    """Weighted engagement within the window, with the points of each activity."""

    score: float
    contributions: dict[str, float]  # activity -> points
    counts: dict[str, int]  # "activity[:role]" -> events within the window
    window_days: int


class RelationshipScore(TypedDict):
    """Relationship score 0-100 now and ``trend_days`` before, with the points of each part."""

    score: float
    components: dict[str, float]  # component -> points
    previous: float  # the score ``trend_days`` before, from the same buckets
    trend: Trend
    trend_days: int


class RoleCount(TypedDict):
    identified: int
    engaged: int


class Committee(TypedDict):
    """The buying committee: stakeholders identified and engaged (account penetration)."""

    stakeholders: int
    engaged: int
    penetration: float | None  # engaged / stakeholders; None without stakeholders
    roles: dict[str, RoleCount]


class Scores(TypedDict):
    as_of: date | None
    config_version: str | None
    engagement: EngagementScore
    relationship: RelationshipScore
    committee: Committee


def engagement_result(
    score: float, contributions: dict[str, float], counts: dict[str, int], window_days: int
) -> EngagementScore:
    """An ``EngagementScore`` in canonical order (mappings passed in sorted)."""
    return {
        "score": score,
        "contributions": contributions,
        "counts": counts,
        "window_days": window_days,
    }


def relationship_result(
    score: float, components: dict[str, float], previous: float, trend: Trend, trend_days: int
) -> RelationshipScore:
    """A ``RelationshipScore`` in canonical order (``components`` passed in sorted)."""
    return {
        "score": score,
        "components": components,
        "previous": previous,
        "trend": trend,
        "trend_days": trend_days,
    }


def committee_result(
    stakeholders: int, engaged: int, penetration: float | None, roles: dict[str, RoleCount]
) -> Committee:
    """A ``Committee`` in canonical order (``roles`` passed in sorted)."""
    return {
        "stakeholders": stakeholders,
        "engaged": engaged,
        "penetration": penetration,
        "roles": roles,
    }


def role_count(identified: int, engaged: int) -> RoleCount:
    return {"identified": identified, "engaged": engaged}


def scores_result(
    as_of: date | None,
    config_version: str | None,
    engagement: EngagementScore,
    relationship: RelationshipScore,
    committee: Committee,
) -> Scores:
    """``Scores`` in canonical order."""
    return {
        "as_of": as_of,
        "config_version": config_version,
        "engagement": engagement,
        "relationship": relationship,
        "committee": committee,
    }


def empty_scores() -> Scores:
    """The scores of a state that has recorded no signal yet."""
    return scores_result(
        None,
        None,
        engagement_result(0.0, {}, {}, 0),
        relationship_result(0.0, {}, 0.0, "steady", 0),
        committee_result(0, 0, None, {}),
    )


def canonical(scores: Scores) -> Scores:
    """``scores`` with every key in its canonical order and the free mappings sorted."""
    engagement, relationship = scores["engagement"], scores["relationship"]
    committee = scores["committee"]
    return scores_result(
        scores["as_of"],
        scores["config_version"],
        engagement_result(
            engagement["score"],
            _sorted(engagement["contributions"]),
            _sorted(engagement["counts"]),
            engagement["window_days"],
        ),
        relationship_result(
            relationship["score"],
            _sorted(relationship["components"]),
            relationship["previous"],
            relationship["trend"],
            relationship["trend_days"],
        ),
        committee_result(
            committee["stakeholders"],
            committee["engaged"],
            committee["penetration"],
            {
                role: role_count(count["identified"], count["engaged"])
                for role, count in sorted(committee["roles"].items())
            },
        ),
    )


def _sorted(mapping: dict[str, Any]) -> dict[str, Any]:
    return dict(sorted(mapping.items()))
