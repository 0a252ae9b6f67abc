"""Response models of the API (the public read contract for sales tools)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from services.api.kpi_models import Figure, Kpi


class StageTransition(BaseModel):
    from_stage: str | None
    to_stage: str | None
    at: datetime
    rule: str = Field(description="The rule that fired, e.g. opportunity_opened.")
    config_version: str
    cause_event_ids: list[str]


class TierTransition(BaseModel):
    from_tier: int | None
    to_tier: int | None
    at: datetime
    rule: str
    config_version: str
    cause_event_ids: list[str]


class ActiveSurge(BaseModel):
    topic: str
    competitor: bool = Field(description="A competitor topic: for a customer, churn risk")
    score: float
    baseline: float
    observed: float
    started_at: datetime
    detector_version: str
    trigger_event_ids: list[str]


class AccountSummary(BaseModel):
    domain: str
    name: str | None
    owner: str | None
    is_target: bool
    fit_score: float
    stage: str | None
    stage_since: datetime | None
    tier: int | None
    surging: bool
    last_activity_at: datetime | None
    updated_at: datetime


class Revenue(BaseModel):
    pipeline: float = Field(description="Sum of open opportunities")
    won: float
    renewals: float
    expansion: float


class EngagementView(BaseModel):
    score: float = Field(
        description="Weighted engagement within the window: sum over its events of the "
        "activity's weight times the contact's role multiplier (1 when no or unknown role)."
    )
    window_days: int = Field(description="Days counted back from the account's clock day.")
    contributions: dict[str, float] = Field(description="Points per activity.")


class RelationshipView(BaseModel):
    score: float = Field(
        description="0-100 from email and meeting patterns within the window: two-way "
        "email, replies, meetings, distinct contacts, recency of the last two-way touch."
    )
    components: dict[str, float] = Field(description="Points of each part of the score.")
    previous: float = Field(description="The score `trend_days` before, from the same data.")
    trend: Literal["improving", "declining", "steady"]
    trend_days: int


class RoleFigures(BaseModel):
    identified: int
    engaged: int


class CommitteeView(BaseModel):
    stakeholders: int = Field(description="Contacts identified (buying-committee size).")
    engaged: int = Field(description="Stakeholders engaged within the engagement window.")
    penetration: Figure = Field(
        description="engaged / stakeholders (account penetration); null without stakeholders."
    )
    roles: dict[str, RoleFigures] = Field(description="Stakeholders per role (unknown: none).")


class ViewThroughFigures(BaseModel):
    visits: int = Field(description="Visits after an impression of the campaign, no click.")
    conversions: int = Field(description="Form fills or new opportunities after such a visit.")


class AccountDetail(AccountSummary):
    fit: dict[str, Any] = Field(description="Fit score with each ICP criterion's contribution.")
    churn_risk: bool = Field(
        description="A customer (won, retention, expansion) surging on a competitor topic"
    )
    stakeholders: int = Field(description="Distinct contacts identified (buying committee)")
    scores_as_of: date | None = Field(
        description="UTC day of the account's latest signal, at which the scores were computed."
    )
    engagement: EngagementView
    relationship: RelationshipView
    committee: CommitteeView
    view_through: dict[str, ViewThroughFigures] = Field(
        description="View-through visits and conversions per campaign."
    )
    revenue: Revenue
    activity: dict[str, int] = Field(description="Touches per channel since first seen")
    stage_rule: str | None = Field(description="The rule that moved the account into its stage.")
    stage_cause_event_ids: list[str] = Field(
        description="Ids of the events that made that move (its evidence), as in the last "
        "`stage_history` entry."
    )
    surges: list[ActiveSurge]
    stage_history: list[StageTransition]
    tier_history: list[TierTransition]
    last_activity_by_channel: dict[str, datetime]


class AccountFields(BaseModel):
    """An account in a listing: every field, or only those asked for with ``fields``."""

    domain: str
    name: str | None = None
    owner: str | None = None
    is_target: bool | None = None
    fit_score: float | None = None
    stage: str | None = None
    stage_since: datetime | None = None
    tier: int | None = None
    surging: bool | None = None
    last_activity_at: datetime | None = None
    updated_at: datetime | None = None


class AccountPage(BaseModel):
    items: list[AccountFields]
    next_cursor: str | None = Field(
        description="Pass as `cursor` for the next page; null at the end."
    )


class StageFigures(BaseModel):
    stage: str
    accounts: int = Field(description="Accounts in this stage now.")
    reached: int = Field(description="Accounts that ever reached this stage or a later one.")
    conversion_from_previous: Figure = Field(
        description="reached(this) / reached(previous); null for the first stage or when 0."
    )
    entered: int = Field(description="Moves into this stage within the period.")
    entered_conversion_from_previous: Figure = Field(
        description="entered(this) / entered(previous) within the period."
    )
    median_days_in_stage: Figure = Field(
        description="Median days from entering this stage (within the period) to the next "
        "stage move; accounts still in the stage are not counted."
    )
    regressions: int = Field(
        description="Moves out of this stage to an earlier one, in the period."
    )
    kpis: list[Kpi] = Field(
        default_factory=list,
        description="This stage's KPIs of the domain (as in /v1/kpis), over the whole UTC "
        "days of the period.",
    )


class FunnelReport(BaseModel):
    period_from: datetime | None
    period_to: datetime | None
    tier: int | None
    stages: list[StageFigures]
    target_accounts: int = Field(description="Target accounts now (the KPI of that name).")
    engaged_share: Figure = Field(
        description="Target accounts engaged within the period's UTC days / target accounts "
        "(the KPI of that name)."
    )


class SurgeRecord(BaseModel):
    event_id: str = Field(description="Id of the SurgeStarted event")
    account: str
    topic: str
    score: float
    baseline: float
    observed: float
    started_at: datetime
    ended_at: datetime | None = Field(description="null while the surge is active")
    changed_at: datetime = Field(
        description="The later of started_at and ended_at: the listing's order and `since`"
    )
    detector_version: str
    trigger_event_ids: list[str]
    tier: int | None = Field(description="The account's current tier")


class SurgePage(BaseModel):
    items: list[SurgeRecord]
    next_cursor: str | None


class TimelinePage(BaseModel):
    items: list[dict[str, Any]] = Field(
        description="Events as received (see the event JSON Schema), newest first; each "
        "carries its identification provenance when ingest recorded one."
    )
    next_cursor: str | None
