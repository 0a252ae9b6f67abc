"""Async SQLAlchemy engine and sessions for PostgreSQL (asyncpg) and SQLite (aiosqlite)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)


class RawJson(str):
    """A document already serialised (e.g. by pydantic's fast encoder): stored as is."""


def serialize_json(value: Any) -> str:
    return value if isinstance(value, RawJson) else json.dumps(value)


def is_sqlite(url: str) -> bool:
    return make_url(url).get_backend_name() == "sqlite"


def create_engine(*, url: str, pool_size: int = 10, echo: bool = False) -> AsyncEngine:
    """Engine with the settings each backend needs to be safe under concurrent services."""
    if is_sqlite(url):
        _ensure_sqlite_directory(url)
        engine = create_async_engine(
            url, echo=echo, connect_args={"timeout": 30}, json_serializer=serialize_json
        )
        event.listen(engine.sync_engine, "connect", _sqlite_pragmas)
        return engine
    engine = create_async_engine(
        url,
        echo=echo,
        pool_size=pool_size,
        max_overflow=pool_size,
        json_serializer=serialize_json,
        # Prepared statements otherwise reuse a generic plan made when a table was empty
        # (a sequential scan), which key lookups then pay for as the table grows.
        connect_args={"server_settings": {"plan_cache_mode": "force_custom_plan"}},
    )
    event.listen(engine.sync_engine, "checkout", _refuse_closed)
    return engine


def _refuse_closed(dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
    """Pessimistic disconnect handling without a round trip: a pooled connection the
    server closed (a restart, a failover, an idle timeout) is known closed by asyncpg as
    soon as the socket said so; the pool then opens a fresh one instead. SQLAlchemy's
    ``pool_pre_ping`` asks the server instead, in three round trips (BEGIN, ";",
    ROLLBACK): a sixth of a detail read's CPU in the API. A connection cut without the
    server closing it fails its first statement, which invalidates the pool."""
    if dbapi_connection.driver_connection.is_closed():
        raise DisconnectionError("closed by the server")


def reads_of(engine: AsyncEngine) -> AsyncEngine:
    """``engine`` (the same pool) with each statement in its own transaction: no BEGIN and
    ROLLBACK round trips around a read's statements (a quarter of a detail read's). What a
    read sees is unchanged: under READ COMMITTED every statement takes its own snapshot
    anyway, in a transaction or not. Never for writes, which must commit together."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def create_sessionmaker(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    return async_sessionmaker(engine, expire_on_commit=False)


async def ping(engine: AsyncEngine) -> None:
    async with engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


def _sqlite_pragmas(dbapi_connection: Any, _record: Any) -> None:
    # WAL lets the API read while a consumer writes; busy_timeout makes writers queue
    # instead of failing when several processes share the embedded database file.
    cursor = dbapi_connection.cursor()
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=30000")
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.execute("PRAGMA foreign_keys=ON")
    cursor.close()


def _ensure_sqlite_directory(url: str) -> None:
    database = make_url(url).database
    if database and database != ":memory:":
        Path(database).parent.mkdir(parents=True, exist_ok=True)
