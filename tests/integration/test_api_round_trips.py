"""What the API says to PostgreSQL: reads run without a transaction around them (no BEGIN
and ROLLBACK round trips; under READ COMMITTED each statement has its own snapshot
anyway), writes still commit together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from sqlalchemy import event

from services.api.app import ApiState
from services.api.settings import ApiSettings
from services.kit.credentials import store_api_token
from services.kit.db import create_sessionmaker
from tests.api_server import READ, in_process, seed

pytestmark = pytest.mark.integration


class Statements:
    """The simple-protocol statements (BEGIN, COMMIT, ROLLBACK, pings) of every connection
    the API checks out; prepared statements (the reads themselves) are not among them."""

    def __init__(self, state: ApiState) -> None:
        self.seen: list[str] = []
        self.checkouts = 0
        self._listening: set[int] = set()
        event.listen(state.engine.sync_engine, "checkout", self._listen)

    def _listen(self, dbapi_connection: Any, _record: Any, _proxy: Any) -> None:
        self.checkouts += 1
        raw = dbapi_connection.driver_connection
        if id(raw) not in self._listening:
            self._listening.add(id(raw))
            raw.add_query_logger(lambda record: self.seen.append(record.query.strip()))

    def transaction_control(self, since: int = 0) -> list[str]:
        """BEGIN, COMMIT and ROLLBACK after the ``since``-th statement, pings left out
        (were ``pool_pre_ping`` on, SQLAlchemy would wrap each ";" in BEGIN/ROLLBACK). A
        connection the reads used (AUTOCOMMIT, e.g. the streams' change tail) begins with
        "BEGIN ISOLATION LEVEL READ COMMITTED": a BEGIN all the same."""
        text = " ".join(self.seen[since:]).replace("BEGIN; ; ROLLBACK;", "")
        words = [s.rstrip(";").upper() for s in text.split()]
        return [w for w in words if w in ("BEGIN", "COMMIT", "ROLLBACK")]


@pytest.fixture
async def api(pg_url: str) -> AsyncIterator[tuple[httpx.AsyncClient, ApiState]]:
    await seed(pg_url)
    # No detail cache (every read goes to the database), no webhook dispatcher (its own
    # transactions would interleave with the reads').
    settings = ApiSettings(database_url=pg_url, api_detail_cache_mb=0, api_webhooks_enabled=False)
    async with in_process(settings) as running:
        yield running


READS = (
    "/v1/accounts/acct03.com",
    "/v1/accounts",
    "/v1/accounts/acct03.com/timeline",
    "/v1/changes",
    "/v1/surges",
    "/v1/funnel",
)


async def test_reads_open_no_transaction(api: tuple[httpx.AsyncClient, ApiState]) -> None:
    client, state = api
    statements = Statements(state)
    for path in READS:  # the token cache filled, the pool's connections opened
        assert (await client.get(path, headers=READ)).status_code == 200, path
    for path in READS:
        before, checkouts = len(statements.seen), statements.checkouts
        assert (await client.get(path, headers=READ)).status_code == 200, path
        assert statements.checkouts > checkouts, path  # it went to the database
        assert statements.transaction_control(before) == [], (path, statements.seen[before:])


async def test_writes_still_commit_together(api: tuple[httpx.AsyncClient, ApiState]) -> None:
    """An admin write (a new write key, then the list it answers with) in one transaction."""
    client, state = api
    async with create_sessionmaker(state.engine)() as session, session.begin():
        await store_api_token(session, "admin", "ops", frozenset({"admin"}))
    statements = Statements(state)
    admin = {"Authorization": "Bearer admin"}
    response = await client.post("/v1/admin/write-keys", json={"source": "website"}, headers=admin)
    assert response.status_code == 201, response.text
    assert statements.transaction_control()[-2:] == ["BEGIN", "COMMIT"], statements.seen
