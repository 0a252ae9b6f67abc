"""The one place that knows PostgreSQL and SQLite spell upserts differently."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession


def upsert_statement(session: AsyncSession, table: Table) -> Any:
    """An INSERT that supports ``on_conflict_do_update/do_nothing`` on the session's backend."""
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert(table)
    return sqlite.insert(table)


def upsert_values(
    session: AsyncSession, table: Table, rows: list[dict[str, Any]], keys: list[str]
) -> Any:
    """INSERT ... ON CONFLICT (keys) DO UPDATE SET every other column = excluded."""
    statement = upsert_statement(session, table)
    updates = {c: statement.excluded[c] for c in rows[0] if c not in keys}
    return statement.values(rows).on_conflict_do_update(index_elements=keys, set_=updates)
