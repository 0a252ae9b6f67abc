"""Deterministic generated event streams for crash, replay and throughput tests."""

from __future__ import annotations

import random
import uuid
from datetime import UTC, datetime, timedelta

from schemas.events import (
    INBOUND_ADAPTER,
    InboundEvent,
)

START = datetime(2026, 1, 1, tzinfo=UTC)

_JOURNEY = (
    ("page_viewed", {"url": "https://vendor.example/blog"}),
    ("ad_impressed", {"campaign_id": "c1"}),
    ("ad_clicked", {"campaign_id": "c1"}),
    ("page_viewed", {"url": "https://vendor.example/pricing"}),
    ("email_replied", {"direction": "inbound"}),
    ("opportunity_created", {"opportunity_id": "{opp}", "amount": 50_000}),
    ("meeting_held", {}),
    ("opportunity_won", {"opportunity_id": "{opp}", "amount": 50_000}),
    ("subscription_renewed", {"amount": 55_000}),
    ("subscription_expanded", {"amount": 20_000}),
)


def generate(accounts: int, events_per_account: int, seed: int = 1) -> list[InboundEvent]:
    """Interleaved journeys: each account is upserted, then walks (part of) the funnel with
    noise, some lose an opportunity or churn; about 2% of events are re-sent duplicates."""
    rng = random.Random(seed)
    per_account = [_account_events(i, events_per_account, rng) for i in range(accounts)]
    stream: list[InboundEvent] = []
    cursors = [0] * accounts
    while any(c < len(e) for c, e in zip(cursors, per_account, strict=True)):
        i = rng.randrange(accounts)
        if cursors[i] < len(per_account[i]):
            stream.append(per_account[i][cursors[i]])
            cursors[i] += 1
            if rng.random() < 0.02:
                stream.append(stream[-1])  # a client retry: same event id
    return stream


def _account_events(index: int, count: int, rng: random.Random) -> list[InboundEvent]:
    domain = f"account-{index:05d}.com"
    at = START + timedelta(hours=rng.randrange(0, 500))
    events = [_event("account_upserted", domain, at, rng, {
        "name": f"Account {index}", "industry": "software", "country": "US", "employees": 500,
        "annual_revenue": 40_000_000, "target": rng.random() < 0.9})]  # fmt: skip
    depth = rng.randrange(1, len(_JOURNEY) + 1)
    opp = f"opp-{index}"
    for n in range(count - 1):
        at += timedelta(hours=rng.randrange(1, 96))
        kind, fields = _JOURNEY[min(n * depth // max(count - 1, 1), depth - 1)]
        if rng.random() < 0.5:
            kind, fields = "page_viewed", {"url": f"https://vendor.example/p{rng.randrange(9)}"}
        elif kind == "opportunity_created" and rng.random() < 0.1:
            kind, fields = "opportunity_lost", {"opportunity_id": opp}
        elif kind == "subscription_renewed" and rng.random() < 0.15:
            kind, fields = "subscription_churned", {}
        concrete = {k: (v.format(opp=opp) if isinstance(v, str) else v) for k, v in fields.items()}
        events.append(_event(kind, domain, at, rng, concrete))
    return events


def _event(
    kind: str, domain: str, at: datetime, rng: random.Random, fields: dict[str, object]
) -> InboundEvent:
    return INBOUND_ADAPTER.validate_python(
        {
            "type": kind,
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "occurred_at": at,
            "received_at": at,
            "account": domain,
            "source": "generator",
            **fields,
        }
    )
