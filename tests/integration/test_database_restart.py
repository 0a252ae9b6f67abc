"""PostgreSQL restarted under a running service: the connections its pool holds were
closed by the server; the next use of the pool must get a fresh one, not an error."""

from __future__ import annotations

import asyncio

import pytest
from sqlalchemy import text

from services.kit import db
from tests.harness import PostgresCluster

pytestmark = pytest.mark.integration


async def test_the_pool_replaces_connections_the_server_closed(
    own_postgres: PostgresCluster,
) -> None:
    url = own_postgres.url(await own_postgres.create_database())
    engine = db.create_engine(url=url, pool_size=3)
    reads = db.reads_of(engine)
    try:
        for pool in (engine, reads):
            async with pool.connect() as connection:
                assert await connection.scalar(text("SELECT 1")) == 1
        # In a thread, as in a service the loop runs on while the server restarts.
        await asyncio.to_thread(own_postgres.restart)
        for _ in range(4):  # more uses than the pool holds connections
            for pool in (engine, reads):
                async with pool.connect() as connection:
                    backend = await connection.scalar(text("SELECT pg_backend_pid()"))
                    assert isinstance(backend, int)
        sessions = db.create_sessionmaker(engine)
        async with sessions() as session, session.begin():
            assert await session.scalar(text("SELECT 2")) == 2
    finally:
        await engine.dispose()
