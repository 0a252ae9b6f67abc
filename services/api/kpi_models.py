"""Response models of ``/v1/kpis`` and ``/v1/funnel/cohorts``."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from pydantic import BaseModel, Field, PlainSerializer

FIGURE_DECIMALS = 4


def _rounded(value: float | None) -> float | None:
    return None if value is None else round(value, FIGURE_DECIMALS)


Figure = Annotated[float | None, PlainSerializer(_rounded, return_type=float | None)]
"""A computed figure (ratio, mean, median, money) as sent: 4 decimals, so that a mean
score reads 27.036, not its binary artefact 27.035999999999998."""


class Kpi(BaseModel):
    name: str
    value: Figure = Field(description="null when undefined (a ratio over 0, no data)")
    unit: str = Field(description="accounts, ratio (0-1), currency, count, days, score, contacts")
    definition: str


class StageKpis(BaseModel):
    stage: str
    accounts: int = Field(description="Target accounts in this stage now.")
    entered: int = Field(description="Target accounts that entered this stage in the period.")
    regressions: int = Field(
        description="Moves from this stage back to an earlier one within the period."
    )
    kpis: list[Kpi]


class Conversion(BaseModel):
    from_stage: str
    to_stage: str
    reached_from: int
    reached_to: int
    rate: Figure = Field(description="reached_to / reached_from; null when 0 / 0")


class KpiReport(BaseModel):
    period_from: date | None = Field(description="First day of the period (UTC), inclusive")
    period_to: date | None = Field(description="Last day of the period (UTC), inclusive")
    tier: int | None
    stages: list[StageKpis]
    conversions: list[Conversion] = Field(
        description="Between consecutive stages, from the accounts that ever reached each."
    )


class CohortStage(BaseModel):
    stage: str
    reached: int = Field(description="Cohort members that entered this stage since.")
    share: Figure = Field(description="reached / size")
    median_days: Figure = Field(description="Median days from funnel entry to this stage")


class Cohort(BaseModel):
    month: str = Field(description="Month the accounts entered the funnel (target), YYYY-MM")
    size: int
    stages: list[CohortStage]


class CohortReport(BaseModel):
    period_from: date | None
    period_to: date | None
    tier: int | None
    cohorts: list[Cohort]
