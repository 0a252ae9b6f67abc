"""The one place that knows PostgreSQL and SQLite spell upserts differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import ARRAY, ColumnElement, Table, any_, cast
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_statement(session: AsyncSession, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_update/do_nothing`` on the session's backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


async def upsert_rows(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], keys: list[str]
) -> None:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET every other column = excluded.

    Executed as executemany over one cached statement: compiling a multi-row VALUES with
    thousands of parameters per batch costs more than the database round trip.
    """
    if not rows:
        return
    statement = upsert_statement(session, table)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    await session.execute(statement.on_conflict_do_update(index_elements=keys, set_=updates), rows)


async def insert_new_rows(session: AsyncSession, table: Table, rows: list[dict[str, Any]]) -> None:
    """INSERT ... ON CONFLICT DO NOTHING, as executemany (replays insert nothing twice)."""
    if rows:
        await session.execute(upsert_statement(session, table).on_conflict_do_nothing(), rows)


def is_one_of(
    session: AsyncSession, column: ColumnElement[Any], values: list[Any]
) -> ColumnElement[bool]:
    """``column IN values``; on PostgreSQL as ``= ANY(array)``, one parameter whatever the
    number of values, so the statement is prepared and planned once, not per list size."""
    if session.get_bind().dialect.name == "postgresql":
        return column == any_(cast(values, ARRAY(column.type)))
    return column.in_(values)
