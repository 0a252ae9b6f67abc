"""The account change log: every StageChanged, TierChanged, SurgeStarted and SurgeEnded,
written in the same transaction as the state that produced it, read in commit-safe order.

Why not just ``seq > cursor``: two transactions may take sequence numbers 7 and 8 and
commit 8 first; a poller that read 8 would never see 7. On PostgreSQL each row carries its
transaction id and readers serve only rows of transactions older than every transaction
still running (the snapshot's xmin), ordered by (txid, seq): nothing can later appear
before a position already served. SQLite has one writer at a time, so seq order is commit
order there.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, literal_column, not_, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.envelope import Envelope
from services.kit.dialect import insert_new_rows
from services.kit.tables import account_changes

CHANGE_TYPES = frozenset({"stage_changed", "tier_changed", "surge_started", "surge_ended"})
# The writing transaction's id, so readers can tell which rows are safe to serve.
_CURRENT_TXID = "pg_current_xact_id()::text::bigint"
_OLDEST_RUNNING_TXID: ColumnElement[int] = literal_column(
    "pg_snapshot_xmin(pg_current_snapshot())::text::bigint"
)
_SAFE_TXID = account_changes.c.txid < _OLDEST_RUNNING_TXID


@dataclass(frozen=True, slots=True, order=True)
class Position:
    """Where a reader is in the log: (txid, seq); txid is 0 on SQLite."""

    txid: int
    seq: int


START = Position(0, 0)


async def record_changes(session: AsyncSession, events: Sequence[Envelope]) -> None:
    """Append derived events to the log (a replayed event id is ignored)."""
    rows = [_row(event) for event in events if getattr(event, "type", None) in CHANGE_TYPES]
    if not rows:
        return
    await insert_new_rows(session, account_changes, rows, {"txid": _CURRENT_TXID})


async def changes_after(
    session: AsyncSession, after: Position, limit: int, account: str | None = None
) -> list[tuple[Position, dict[str, Any]]]:
    """Up to ``limit`` changes after ``after``, each with its position, in log order."""
    table = account_changes.c
    query = select(table.txid, table.seq, table.payload).limit(limit)
    if _is_postgres(session):
        query = query.where(tuple_(table.txid, table.seq) > tuple_(after.txid, after.seq))
        query = query.where(_SAFE_TXID).order_by(table.txid, table.seq)
    else:
        query = query.where(table.seq > after.seq).order_by(table.seq)
    if account is not None:
        query = query.where(table.account == account)
    rows = await session.execute(query)
    return [(Position(txid or 0, seq), payload) for txid, seq, payload in rows]


async def held_back_after(session: AsyncSession, after: Position) -> bool:
    """Whether a change after ``after`` is committed but not yet served: a transaction older
    than its own still runs (PostgreSQL; never on SQLite). Nothing announces when that
    older one ends, so a reader that was woken by the change's commit asks again soon."""
    if not _is_postgres(session):
        return False
    table = account_changes.c
    query = (
        select(table.seq)
        .where(tuple_(table.txid, table.seq) > tuple_(after.txid, after.seq))
        .where(not_(_SAFE_TXID))
        .limit(1)
    )
    return (await session.execute(query)).first() is not None


async def newest_position(session: AsyncSession) -> Position:
    """The position of the last change a reader may be served now (START when empty)."""
    table = account_changes.c
    query = select(table.txid, table.seq).limit(1)
    if _is_postgres(session):
        query = query.where(_SAFE_TXID).order_by(table.txid.desc(), table.seq.desc())
    else:
        query = query.order_by(table.seq.desc())
    row = (await session.execute(query)).first()
    return START if row is None else Position(row[0] or 0, row[1])


def _row(event: Envelope) -> dict[str, Any]:
    return {
        "event_id": event.event_id,
        "account": event.account,
        "type": getattr(event, "type", ""),
        "occurred_at": event.occurred_at,
        "payload": event.model_dump(mode="json", exclude_none=True),
    }


def _is_postgres(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"
