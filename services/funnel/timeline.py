"""The account timeline: the events applied to each account, kept for a retention window,
written in the batch's transaction (the API's `/v1/accounts/{domain}/timeline` reads it)."""

from __future__ import annotations

import time
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import Event
from services.kit.db import RawJson
from services.kit.dialect import insert_new_rows
from services.kit.tables import account_events

DERIVED = frozenset({"stage_changed", "tier_changed", "surge_started", "surge_ended"})


class Timeline:
    def __init__(self, retention_days: float, prune_every_s: float = 60.0) -> None:
        self._retention = timedelta(days=retention_days)
        self._enabled = retention_days > 0
        self._prune_every = prune_every_s
        self._next_prune = time.monotonic() + prune_every_s

    async def record(self, session: AsyncSession, events: Sequence[Event]) -> None:
        """Inbound events of known accounts (a replay inserts nothing twice)."""
        if not self._enabled:
            return
        rows = [
            {
                "event_id": e.event_id,
                "account": e.account,
                "type": e.type,
                "occurred_at": e.occurred_at,
                "payload": RawJson(e.model_dump_json(exclude_none=True)),
            }
            for e in events
            if e.account and e.type not in DERIVED
        ]
        await insert_new_rows(session, account_events, rows)
        await self._maybe_prune(session)

    async def _maybe_prune(self, session: AsyncSession) -> None:
        if time.monotonic() < self._next_prune:
            return
        self._next_prune = time.monotonic() + self._prune_every
        await self.prune(session)

    async def prune(self, session: AsyncSession) -> None:
        """Delete the events older than the retention window (by the wall clock)."""
        if not self._enabled:
            return
        cutoff = datetime.now(UTC) - self._retention
        await session.execute(delete(account_events).where(account_events.c.occurred_at < cutoff))
