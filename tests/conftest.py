"""Fixtures on real parts: PostgreSQL (one cluster per session, one database per test),
SQLite, and a fresh Tansu broker per test (it starts in milliseconds and keeps topics
from leaking events between tests)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit import db, kafka, migrate
from services.kit.broker import EmbeddedBroker, start_broker
from tests.harness import PostgresCluster, Stack, stack, start_postgres


@pytest.fixture
def own_postgres() -> Iterator[PostgresCluster]:
    """A cluster of the test's own, for tests that stop or restart it (the shared one would
    cut every other test's connections)."""
    cluster = start_postgres()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresCluster]:
    cluster = start_postgres()
    try:
        yield cluster
    finally:
        cluster.stop()


@pytest.fixture
async def pg_url(postgres: PostgresCluster) -> str:
    """A fresh, migrated PostgreSQL database for one test."""
    url = postgres.url(await postgres.create_database())
    await asyncio.to_thread(migrate.upgrade, url)
    return url


@pytest.fixture
async def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'abm.db'}"
    await asyncio.to_thread(migrate.upgrade, url)
    return url


@pytest.fixture(params=["postgresql", "sqlite"])
def any_db_url(request: pytest.FixtureRequest) -> str:
    """Storage tests run on both backends."""
    fixture = "pg_url" if request.param == "postgresql" else "sqlite_url"
    return str(request.getfixturevalue(fixture))


@pytest.fixture
async def session(any_db_url: str) -> AsyncIterator[AsyncSession]:
    """A session on a fresh database of each backend."""
    engine = db.create_engine(url=any_db_url)
    async with db.create_sessionmaker(engine)() as opened:
        yield opened
    await engine.dispose()


@pytest.fixture
async def broker(tmp_path: Path) -> AsyncIterator[EmbeddedBroker]:
    running = start_broker(log_file=tmp_path / "tansu.log")
    try:
        await kafka.wait_for_broker(running.bootstrap)
        await kafka.ensure_topics(running.bootstrap)
        yield running
    finally:
        running.stop()


@pytest.fixture
def services(pg_url: str, broker: EmbeddedBroker, tmp_path: Path) -> Iterator[Stack]:
    with stack(pg_url, broker.bootstrap, tmp_path) as running:
        yield running
