"""What the API says to PostgreSQL: reads run without a transaction around them (no BEGIN
and ROLLBACK round trips; under READ COMMITTED each statement has its own snapshot
anyway), writes still commit together."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest
from sqlalchemy import event

from services.api.app import ApiState, create_app
from services.api.settings import ApiSettings
from tests.api_server import seed

pytestmark = pytest.mark.integration

READER = [(b"authorization", b"Bearer reader")]


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
        (were ``pool_pre_ping`` on, SQLAlchemy would wrap each ";" in BEGIN/ROLLBACK)."""
        text = " ".join(self.seen[since:]).replace("BEGIN; ; ROLLBACK;", "")
        return [s for s in text.split() if s.rstrip(";").upper() in ("BEGIN", "COMMIT", "ROLLBACK")]


@pytest.fixture
async def app_state(pg_url: str) -> AsyncIterator[tuple[Any, dict[str, Any]]]:
    await seed(pg_url)
    # No detail cache (every read goes to the database), no webhook dispatcher (its own
    # transactions would interleave with the reads').
    settings = ApiSettings(database_url=pg_url, api_detail_cache_mb=0, api_webhooks_enabled=False)
    app = create_app(settings)
    async with app.router.lifespan_context(app) as state:
        yield app, dict(state)


async def _get(app: Any, state: dict[str, Any], path: str, headers: list[Any]) -> int:
    return await _call(app, state, "GET", path, headers, b"")


async def _call(
    app: Any, state: dict[str, Any], method: str, path: str, headers: list[Any], body: bytes
) -> int:
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": method,
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"api"), *headers],
        "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": dict(state),
    }  # fmt: skip
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    await app(scope, receive, send)
    return int(sent[0]["status"])


READS = (
    "/v1/accounts/acct03.com",
    "/v1/accounts",
    "/v1/accounts/acct03.com/timeline",
    "/v1/changes",
    "/v1/surges",
    "/v1/funnel",
)


async def test_reads_open_no_transaction(app_state: tuple[Any, dict[str, Any]]) -> None:
    app, state = app_state
    statements = Statements(state["api"])
    for path in READS:  # the token cache filled, the pool's connections opened
        assert await _get(app, state, path, READER) == 200, path
    for path in READS:
        before, checkouts = len(statements.seen), statements.checkouts
        assert await _get(app, state, path, READER) == 200, path
        assert statements.checkouts > checkouts, path  # it went to the database
        assert statements.transaction_control(before) == [], (path, statements.seen[before:])


async def test_writes_still_commit_together(app_state: tuple[Any, dict[str, Any]]) -> None:
    """An admin write (a new write key, then the list it answers with) in one transaction."""
    from services.kit.credentials import store_api_token
    from services.kit.db import create_sessionmaker

    app, state = app_state
    api: ApiState = state["api"]
    async with create_sessionmaker(api.engine)() as session, session.begin():
        await store_api_token(session, "admin", "ops", frozenset({"admin"}))
    statements = Statements(api)
    body = b'{"source": "website"}'
    headers = [(b"authorization", b"Bearer admin"), (b"content-type", b"application/json")]
    assert await _call(app, state, "POST", "/v1/admin/write-keys", headers, body) == 201
    assert statements.transaction_control()[-2:] == ["BEGIN;", "COMMIT;"], statements.seen
