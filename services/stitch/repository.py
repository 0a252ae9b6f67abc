"""Visitor state in the database: ``visitors`` rows and their pending events.

``lock_visitors`` must come first in a transaction: it inserts or touches every visitor
row of the batch (``INSERT ... ON CONFLICT DO UPDATE ... RETURNING``), which takes each
row's lock, in ``anonymous_id`` order, and returns the rows as they are once the lock is
held. Pending events are read and written only after that (see services/stitch/service.py
for why this makes concurrent members agree).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

from pydantic import ValidationError
from sqlalchemy import bindparam, delete, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import EVENT_ADAPTER
from services.kit.dialect import insert_new_rows, is_one_of, upsert_statement
from services.kit.tables import visitor_pending_events, visitors
from services.stitch.processing import PendingEvent, VisitorState

log = logging.getLogger(__name__)

# Rows per statement: well under PostgreSQL's 32,767 bind parameters.
_CHUNK = 500


async def lock_visitors(
    session: AsyncSession, first_seen: Mapping[str, datetime]
) -> dict[str, VisitorState]:
    """Lock (creating if new) the rows of these visitors and return their current state.

    A new visitor's row starts with ``first_seen_at = last_seen_at`` = the given time and
    no account; the caller overwrites it with the processed state in this transaction.
    Rows are locked in sorted order so two members locking overlapping sets never deadlock.
    """
    ordered = sorted(first_seen)
    states: dict[str, VisitorState] = {}
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        statement = upsert_statement(session, visitors)
        statement = statement.values(
            [
                {
                    "anonymous_id": visitor,
                    "first_seen_at": first_seen[visitor],
                    "last_seen_at": first_seen[visitor],
                }
                for visitor in chunk
            ]
        )
        # A no-op update: it exists to lock the row and make RETURNING see the latest
        # committed version (READ COMMITTED re-reads a row it had to wait for).
        statement = statement.on_conflict_do_update(
            index_elements=[visitors.c.anonymous_id],
            set_={"last_seen_at": visitors.c.last_seen_at},
        ).returning(*visitors.c)
        for row in (await session.execute(statement)).mappings():
            states[row["anonymous_id"]] = VisitorState(**row)  # its fields are the columns
    return states


async def load_pending(
    session: AsyncSession, visitor_ids: Sequence[str]
) -> dict[str, list[PendingEvent]]:
    """Pending events of these visitors (call after ``lock_visitors``). A payload that no
    longer decodes (an older schema) is logged and dropped, never a crash."""
    found: dict[str, list[PendingEvent]] = {}
    wanted = sorted(set(visitor_ids))
    for start in range(0, len(wanted), _CHUNK):
        chunk = wanted[start : start + _CHUNK]
        rows = await session.execute(
            select(visitor_pending_events.c.anonymous_id, visitor_pending_events.c.payload).where(
                is_one_of(session, visitor_pending_events.c.anonymous_id, chunk)
            )
        )
        for visitor, payload in rows:
            try:
                event = EVENT_ADAPTER.validate_python(payload)
            except ValidationError:
                log.warning("dropping an undecodable pending event of a visitor")
                continue
            found.setdefault(visitor, []).append(PendingEvent(event))
    return found


async def save_visitors(session: AsyncSession, states: Sequence[VisitorState]) -> None:
    """Write the processed states over the rows ``lock_visitors`` locked (one executemany)."""
    if not states:
        return
    columns = ("account", "first_seen_at", "identified_at", "provenance", "last_seen_at",
               "confidence", "last_identified_account")  # fmt: skip
    statement = (
        update(visitors)
        .where(visitors.c.anonymous_id == bindparam("b_anonymous_id"))
        .values({name: bindparam(f"b_{name}", type_=visitors.c[name].type) for name in columns})
    )
    rows = [
        {
            "b_anonymous_id": s.anonymous_id,
            "b_account": s.account,
            "b_first_seen_at": s.first_seen_at,
            "b_identified_at": s.identified_at,
            "b_provenance": s.provenance,
            "b_last_seen_at": s.last_seen_at,
            "b_confidence": s.confidence,
            "b_last_identified_account": s.last_identified_account,
        }
        for s in states
    ]
    await session.execute(statement, rows)


async def replace_pending(
    session: AsyncSession,
    before: Mapping[str, Sequence[PendingEvent]],
    after: Mapping[str, Sequence[PendingEvent]],
) -> None:
    """Make each visitor's stored pending events ``after``: delete the ones gone (attributed
    or pruned), insert the new ones."""
    gone: list[tuple[str, str]] = []
    added: list[dict[str, Any]] = []
    for visitor in sorted(set(before) | set(after)):
        old = {p.event.event_id for p in before.get(visitor, ())}
        new = {p.event.event_id: p for p in after.get(visitor, ())}
        gone += [(visitor, event_id) for event_id in sorted(old - new.keys())]
        added += [
            {
                "anonymous_id": visitor,
                "event_id": event_id,
                "occurred_at": pending.event.occurred_at,
                "payload": pending.event.model_dump(mode="json", exclude_none=True),
            }
            for event_id, pending in new.items()
            if event_id not in old
        ]
    key = tuple_(visitor_pending_events.c.anonymous_id, visitor_pending_events.c.event_id)
    for start in range(0, len(gone), _CHUNK):
        await session.execute(
            delete(visitor_pending_events).where(key.in_(gone[start : start + _CHUNK]))
        )
    await insert_new_rows(session, visitor_pending_events, added)
