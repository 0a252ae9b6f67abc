"""The paid campaigns behind the ads, and their weekly spend (the cost side of the KPIs)."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import UTC, datetime, time, timedelta

from services.simulate.segment import Draft, Who, track_call


@dataclass(frozen=True, slots=True)
class Campaign:
    campaign_id: str
    channel: str
    weekly_budget: tuple[float, float]
    share: float
    """Share of the impressions this campaign serves."""


CAMPAIGNS = (
    Campaign("abm-display-tier1", "display", (1_200, 2_500), 0.5),
    Campaign("abm-retargeting", "display", (400, 900), 0.25),
    Campaign("sig-webinar", "email_signature", (100, 250), 0.25),
)
SPEND_SYNC = Who(user_id="ads:spend-sync")


def pick_campaign(rng: random.Random) -> Campaign:
    return rng.choices(CAMPAIGNS, [c.share for c in CAMPAIGNS])[0]


def campaign_spend(start: datetime, history_days: int, rng: random.Random) -> list[Draft]:
    """Spend per campaign and completed week (Monday to Sunday), synced Monday 06:00 UTC."""
    monday = (start - timedelta(days=history_days)).date()
    monday -= timedelta(days=monday.weekday())
    drafts: list[Draft] = []
    while (synced := datetime.combine(monday + timedelta(days=7), time(6), UTC)) <= start:
        sunday = monday + timedelta(days=6)
        for campaign in CAMPAIGNS:
            properties = {
                "channel": campaign.channel,
                "campaign_id": campaign.campaign_id,
                "amount": round(rng.uniform(*campaign.weekly_budget), 2),
                "currency": "USD",
                "period_start": monday.isoformat(),
                "period_end": sunday.isoformat(),
            }
            drafts.append(track_call(synced, SPEND_SYNC, "Campaign Spend", properties))
        monday += timedelta(days=7)
    return drafts
