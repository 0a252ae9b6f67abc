"""The catalogue of funnel KPIs: each one's name, the stage it is tracked at, its unit and
its one-line definition, served by the API next to the values. How each is computed lives
in ``schemas.kpis``."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Literal

from schemas.events import STAGE_ORDER, Stage

Unit = Literal["accounts", "ratio", "currency", "count", "days", "score", "contacts"]


@dataclass(frozen=True, slots=True)
class KpiSpec:
    """What one KPI is: its name, the funnel stage it is tracked at, unit and definition."""

    name: str
    stage: Stage
    unit: Unit
    definition: str


_T, _E, _O, _W, _R, _X = STAGE_ORDER
KPIS: tuple[KpiSpec, ...] = (
    KpiSpec("target_accounts", _T, "accounts", "Target accounts now (fit or explicitly marked)."),
    KpiSpec("surges", _T, "count", "Intent surges started within the period."),
    KpiSpec(
        "relationship_score",
        _T,
        "score",
        "Mean relationship score (0-100, email and meeting patterns) of the target accounts "
        "not yet customers.",
    ),
    KpiSpec(
        "declining_relationships",
        _T,
        "accounts",
        "Target accounts not yet customers whose relationship score fell over 30 days.",
    ),
    KpiSpec("ad_impressions", _E, "count", "Ad impressions served to target accounts."),
    KpiSpec("view_through_visits", _E, "count", "Visits after an impression without a click."),
    KpiSpec("view_through_conversions", _E, "count", "Conversions after a view-through visit."),
    KpiSpec("ad_clicks", _E, "count", "Ad clicks by target accounts."),
    KpiSpec("visits", _E, "count", "Website visits by target accounts."),
    KpiSpec("high_value_visits", _E, "count", "Visits of high-value pages (pricing, demo)."),
    KpiSpec("chats", _E, "count", "Chat conversations started by target accounts."),
    KpiSpec("engaged_accounts", _E, "accounts", "Target accounts that engaged within the period."),
    KpiSpec(
        "engaged_share",
        _E,
        "ratio",
        "Target accounts that engaged within the period / target accounts now.",
    ),
    KpiSpec("not_engaged_share", _E, "ratio", "1 - engaged share."),
    KpiSpec(
        "spend",
        _E,
        "currency",
        "Campaign spend in the period, pro rata by day (per tier: spend on its accounts).",
    ),
    KpiSpec("cost_per_engaged_account", _E, "currency", "spend / engaged accounts."),
    KpiSpec("web_research_spikes", _E, "count", "Surges on the account's own web activity."),
    KpiSpec("web_research_spikes_per_account", _E, "ratio", "web research spikes / targets."),
    KpiSpec(
        "deanonymisation_rate",
        _E,
        "ratio",
        "Visitors of target accounts identified as known contacts within the period / "
        "those anonymous at some time within it.",
    ),
    KpiSpec(
        "opportunity_accounts",
        _O,
        "accounts",
        "Target accounts that entered this stage in the period.",
    ),
    KpiSpec("stakeholders", _O, "contacts", "Contacts known per target account in this stage now."),
    KpiSpec(
        "penetration",
        _O,
        "contacts",
        "Engaged stakeholders per target account in this stage now (of those whose "
        "committee is scored).",
    ),
    KpiSpec("opportunity_rate", _O, "ratio", "opportunity accounts / target accounts."),
    KpiSpec(
        "pipeline",
        _O,
        "currency",
        "Open opportunities' amounts of target accounts now, whatever their stage.",
    ),
    KpiSpec(
        "days_first_engagement_to_opportunity",
        _O,
        "days",
        "Median days from an account's first engagement to its opportunity.",
    ),
    KpiSpec("cost_per_opportunity", _O, "currency", "spend / opportunity accounts."),
    KpiSpec("won_accounts", _W, "accounts", "Target accounts that signed within the period."),
    KpiSpec("win_rate", _W, "ratio", "won accounts / target accounts."),
    KpiSpec(
        "new_revenue", _W, "currency", "Amounts of the deals won by new customers in the period."
    ),
    KpiSpec("deal_cycle_days", _W, "days", "Median days from first engagement to signature."),
    KpiSpec(
        "touches_per_won_account",
        _W,
        "count",
        "Sales and marketing touches (all channels) up to the signature day, per account "
        "won in the period.",
    ),
    KpiSpec("cost_per_won_account", _W, "currency", "spend / won accounts."),
    KpiSpec("renewed_customers", _R, "accounts", "Customers who renewed within the period."),
    KpiSpec(
        "renewal_rate",
        _R,
        "ratio",
        "Customers who renewed at the end of their term / customers whose term ended.",
    ),
    KpiSpec("competitor_surges", _R, "count", "Customers' surges on competitor topics."),
    KpiSpec(
        "customer_relationship_score",
        _R,
        "score",
        "Mean relationship score of the customers (target accounts): low or falling, act.",
    ),
    KpiSpec(
        "customer_declining_relationships",
        _R,
        "accounts",
        "Customers whose relationship score fell over the last 30 days.",
    ),
    KpiSpec("average_contract_value", _X, "currency", "Mean amount of new and renewed contracts."),
    KpiSpec("expansion_revenue", _X, "currency", "Upsell and cross-sell amounts."),
    KpiSpec("total_revenue", _X, "currency", "new + renewal + expansion revenue."),
    KpiSpec("nps", _X, "score", "% promoters (9-10) - % detractors (0-6), from -100 to 100."),
)
KPI_BY_NAME: Mapping[str, KpiSpec] = {spec.name: spec for spec in KPIS}
