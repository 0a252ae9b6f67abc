"""Schema migrations through Alembic, configured in code (no alembic.ini to keep in sync)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection
from sqlalchemy.ext.asyncio import AsyncEngine

MIGRATIONS = Path(__file__).parent / "migrations"


def alembic_config(database_url: str) -> Config:
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("sqlalchemy.url", database_url)
    return config


def upgrade(database_url: str, revision: str = "head") -> None:
    """Migrate to ``revision``; blocking (Alembic runs its own event loop in env.py)."""
    command.upgrade(alembic_config(database_url), revision)


@functools.cache
def head_revision() -> str | None:
    """The newest revision the code ships (read once: it cannot change while running)."""
    return ScriptDirectory.from_config(alembic_config("")).get_current_head()


async def is_current(engine: AsyncEngine) -> bool:
    """True when the database is at the head revision this code ships, or at a revision
    this code does not know: a newer release migrated it first (upgrades run the migration
    before rolling the services, and migrations stay backward compatible), so the old pods
    stay ready during the rollout. A database behind the code is not current."""
    async with engine.connect() as connection:
        current = await connection.run_sync(_current)
    return current == head_revision() or (current is not None and current not in revisions())


@functools.cache
def revisions() -> frozenset[str]:
    """Every revision the code ships."""
    script = ScriptDirectory.from_config(alembic_config(""))
    return frozenset(r.revision for r in script.walk_revisions())


def _current(connection: Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()
