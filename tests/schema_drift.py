"""What the migrations built, against what ``tables.py`` declares (alembic's comparison),
for the storage tests. Indexes on an expression are compared by name: neither backend's
reflection reads them (SQLAlchemy warns and skips them; PostgreSQL's comes back in part,
so alembic would report it removed and added)."""

from __future__ import annotations

import warnings
from typing import Any

from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Column, text
from sqlalchemy.engine import Connection
from sqlalchemy.exc import SAWarning

from services.kit.tables import metadata

EXPRESSION_INDEXES = {
    index.name
    for table in metadata.tables.values()
    for index in table.indexes
    if any(not isinstance(e, Column) for e in index.expressions)
}


def schema_differences(connection: Connection) -> list[Any]:
    """alembic's differences, those of expression indexes left out."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Skipped unsupported reflection", SAWarning)
        warnings.filterwarnings("ignore", "autogenerate skipping", UserWarning)
        context = MigrationContext.configure(connection, opts={"compare_type": True})
        differences = compare_metadata(context, metadata)
    return [d for d in differences if not _on_expression_index(d)]


def expression_index_names(connection: Connection) -> set[str]:
    """The expression indexes (ours use CASE) the database holds."""
    if connection.dialect.name == "postgresql":
        query = "SELECT indexname FROM pg_indexes WHERE indexdef LIKE '%CASE%'"
    else:
        query = "SELECT name FROM sqlite_master WHERE type = 'index' AND sql LIKE '%CASE%'"
    return set(connection.execute(text(query)).scalars())


def _on_expression_index(difference: Any) -> bool:
    if not isinstance(difference, tuple):
        return False
    kind, *rest = difference
    return (
        kind in ("add_index", "remove_index")
        and getattr(rest[0], "name", None) in EXPRESSION_INDEXES
    )
