"""Webhook subscriptions and deliveries in the database."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.changes import START, Position, changes_after
from services.kit.dialect import insert_new_rows, upsert_rows
from services.kit.tables import webhook_cursor, webhook_deliveries, webhook_subscriptions

CURSOR = "deliveries"


@dataclass(frozen=True, slots=True)
class Outcome:
    delivery_id: int
    status_code: int | None
    error: str | None

    @property
    def delivered(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


async def active_subscriptions(session: AsyncSession) -> list[dict[str, Any]]:
    rows = await session.execute(
        select(webhook_subscriptions).where(webhook_subscriptions.c.revoked_at.is_(None))
    )
    return [dict(r._mapping) for r in rows]


async def fan_out(session: AsyncSession, limit: int) -> int:
    """Turn changes after the dispatcher's cursor into deliveries; returns changes read.

    The cursor row is locked for the transaction, so one replica fans out at a time.
    """
    position = await _locked_cursor(session)
    changes = await changes_after(session, position, limit)
    if not changes:
        return 0
    now = datetime.now(UTC)
    subscriptions = await active_subscriptions(session)
    rows = [
        {
            "subscription_id": sub["id"],
            "event_id": payload["event_id"],
            "event_type": payload["type"],
            "payload": payload,
            "status": "pending",
            "attempts": 0,
            "next_attempt_at": now,
            "created_at": now,
        }
        for _, payload in changes
        for sub in subscriptions
        if payload["type"] in sub["event_types"].split()
    ]
    await insert_new_rows(session, webhook_deliveries, rows)
    last = changes[-1][0]
    await upsert_rows(
        session, webhook_cursor, [{"name": CURSOR, "txid": last.txid, "seq": last.seq}], ["name"]
    )
    return len(changes)


async def claim_due(session: AsyncSession, lease_s: float, limit: int) -> list[dict[str, Any]]:
    """Due deliveries, leased (pushed into the future) so no other replica sends them too."""
    now = datetime.now(UTC)
    table = webhook_deliveries
    due = (
        select(table.c.id)
        .where(table.c.status == "pending")
        .where(table.c.next_attempt_at <= now)
        .order_by(table.c.next_attempt_at)
        .limit(limit)
    )
    if session.get_bind().dialect.name == "postgresql":
        due = due.with_for_update(skip_locked=True)
    claimed = await session.execute(
        update(table)
        .where(table.c.id.in_(due.scalar_subquery()))
        .values(next_attempt_at=now + timedelta(seconds=lease_s))
        .returning(
            table.c.id,
            table.c.subscription_id,
            table.c.event_id,
            table.c.event_type,
            table.c.payload,
            table.c.attempts,
        )
    )
    return [dict(r._mapping) for r in claimed]


async def record_outcome(
    session: AsyncSession, outcome: Outcome, attempts: int, retry_in_s: float | None
) -> None:
    """``retry_in_s`` None after a failure means the delivery gave up (failed)."""
    now = datetime.now(UTC)
    values: dict[str, Any] = {
        "attempts": attempts,
        "last_status_code": outcome.status_code,
        "last_error": (outcome.error or "")[:512] or None,
    }
    if outcome.delivered:
        values |= {"status": "delivered", "delivered_at": now}
    elif retry_in_s is None:
        values |= {"status": "failed"}
    else:
        values |= {"next_attempt_at": now + timedelta(seconds=retry_in_s)}
    table = webhook_deliveries
    await session.execute(update(table).where(table.c.id == outcome.delivery_id).values(**values))


async def deliveries_of(
    session: AsyncSession, subscription_id: str, limit: int
) -> list[dict[str, Any]]:
    table = webhook_deliveries
    rows = await session.execute(
        select(table)
        .where(table.c.subscription_id == subscription_id)
        .order_by(table.c.id.desc())
        .limit(limit)
    )
    return [dict(r._mapping) for r in rows]


async def _locked_cursor(session: AsyncSession) -> Position:
    query = select(webhook_cursor.c.txid, webhook_cursor.c.seq).where(
        webhook_cursor.c.name == CURSOR
    )
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    row = (await session.execute(query)).first()
    return START if row is None else Position(row[0], row[1])
