"""Time in stage on PostgreSQL when two moves share a moment: the funnel numbers each
account's transitions, and the history is read in that order, not in the order of the
moves' ids (UUIDv5, random with respect to the order made)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import EVENT_ADAPTER, Event
from services.api import queries
from services.funnel.config import FunnelConfig
from services.funnel.outputs import derived_event_id
from services.funnel.service import FunnelHandler
from services.kit import db
from services.kit.inbound import InboundRecord

pytestmark = pytest.mark.integration

T0 = datetime(2026, 2, 2, tzinfo=UTC)


def event(type_: str, event_id: str, domain: str, day: float, **fields: Any) -> Event:
    at = T0 + timedelta(days=day)
    return EVENT_ADAPTER.validate_python(
        {"type": type_, "event_id": event_id, "occurred_at": at, "received_at": at,
         "account": domain, "source": "test", **fields}
    )  # fmt: skip


def moved_in_order(entered_target: tuple[str, str], entered_engaged: tuple[str, str]) -> bool:
    """Whether the ids of the two moves, (cause id, stage), sort in the order they were made."""
    target = derived_event_id(entered_target[0], "stage", entered_target[1])
    engaged = derived_event_id(entered_engaged[0], "stage", entered_engaged[1])
    return target < engaged


# acme.com: visits before it is a target; its upsert (day 1) makes both moves at once.
ACME = [
    event("page_viewed", "acme-visit", "acme.com", 0, url="/"),
    event("account_upserted", "acme-upsert-2", "acme.com", 1, target=True),
    event("opportunity_created", "acme-opportunity", "acme.com", 5, opportunity_id="o1"),
]
# beta.com: targeted on day 1, then a late visit (of day 0.5) arrives in a later batch and
# engages it at its clock, day 1: the same moment, moves of two events and two batches.
BETA = [
    event("account_upserted", "beta-upsert-0", "beta.com", 1, target=True),
    event("page_viewed", "beta-visit-1", "beta.com", 0.5, url="/"),
    event("opportunity_created", "beta-opportunity", "beta.com", 5, opportunity_id="o1"),
]


async def test_time_in_stage_follows_the_order_the_moves_were_made(pg_url: str) -> None:
    # The ids sort backwards (engaged before target), so ordering by id would give the
    # engaged stay (day 1 to 5) to target and measure 0 days engaged.
    assert not moved_in_order(("acme-upsert-2", "target"), ("acme-upsert-2", "engaged"))
    assert not moved_in_order(("beta-upsert-0", "target"), ("beta-visit-1", "engaged"))
    handler = FunnelHandler(FunnelConfig(), timeline_days=0)
    engine = db.create_engine(url=pg_url)
    try:
        sessions = db.create_sessionmaker(engine)
        # acme's events in one batch; beta's one per batch (its counter goes through storage)
        for offset, batch in enumerate([ACME, *([e] for e in BETA)]):
            records = [InboundRecord("t", 0, offset * 10 + i, e) for i, e in enumerate(batch)]
            async with sessions() as session, session.begin():
                await handler.apply(session, records)
        async with sessions() as session, session.begin():
            moves = await queries.stage_moves(session, None, None, None)
    finally:
        await engine.dispose()
    days_in = sorted(
        (to, (left_at - at) / timedelta(days=1))
        for _, to, at, left_at in moves
        if left_at is not None
    )
    # Per account: target from day 1 to day 1, engaged from day 1 to day 5.
    assert days_in == [("engaged", 4.0), ("engaged", 4.0), ("target", 0.0), ("target", 0.0)]
