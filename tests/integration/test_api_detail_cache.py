"""Account details served from memory on PostgreSQL: a poll of a cached account runs no
query, the route's checks still apply, and a notified change is served on the next polls."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable, Iterable, Iterator
from contextlib import contextmanager
from typing import Any

import asyncpg
import httpx
import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine

from services.kit import db
from services.kit.notify import (
    LISTENER_NAME,
    AccountChangeListener,
    asyncpg_dsn,
    notify_accounts_changed,
)
from tests.api_server import READ, seed, serving

pytestmark = pytest.mark.integration


class Queries:
    """Counts the statements every SQLAlchemy engine of this process sends."""

    def __init__(self) -> None:
        self.count = 0

    def __call__(self, *_args: Any) -> None:
        self.count += 1


@contextmanager
def counting() -> Iterator[Queries]:
    queries = Queries()
    event.listen(Engine, "before_cursor_execute", queries)
    try:
        yield queries
    finally:
        event.remove(Engine, "before_cursor_execute", queries)


async def eventually(check: Callable[[], Awaitable[bool]], attempts: int = 200) -> bool:
    """Whether ``check`` holds within ``attempts`` polls 25 ms apart (5 s in all)."""
    for _ in range(attempts):
        if await check():
            return True
        await asyncio.sleep(0.025)
    return False


async def write(url: str, sql: str, notify: Iterable[str] = ()) -> None:
    """Change rows as a writer would, notifying (or not) in the same transaction."""
    engine = db.create_engine(url=url)
    try:
        async with engine.begin() as connection:
            await connection.execute(text(sql))
            await notify_accounts_changed(connection, notify)
    finally:
        await engine.dispose()


@pytest.fixture
async def cached_api(pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    await seed(pg_url)
    # A bucket that does not refill during a test: remaining counts only go down.
    limits = {"api_rate_limit_burst": 10_000, "api_rate_limit_per_minute": 1}
    async with serving(pg_url, **limits) as client:
        assert await eventually(lambda: _caching(client))
        yield client


async def _caching(client: httpx.AsyncClient) -> bool:
    """Whether the cache is serving: its listener may be listening before it resumes it.

    Reads acct09.com, which no test here reads, so every test starts from a cold cache."""
    await client.get("/v1/accounts/acct09.com", headers=READ)
    with counting() as queries:
        response = await client.get("/v1/accounts/acct09.com", headers=READ)
    return response.status_code == 200 and queries.count == 0


async def _listening(url: str) -> bool:
    return bool(await _listener_pids(url))


async def _listener_pids(url: str) -> list[int]:
    connection = await asyncpg.connect(asyncpg_dsn(url))
    try:
        rows = await connection.fetch(
            "SELECT pid FROM pg_stat_activity WHERE application_name = $1", LISTENER_NAME
        )
        return [row["pid"] for row in rows]
    finally:
        await connection.close()


async def test_a_second_poll_runs_no_query_and_returns_the_same_response(
    cached_api: httpx.AsyncClient,
) -> None:
    with counting() as first_read:
        first = await cached_api.get("/v1/accounts/acct03.com", headers=READ)
    assert first.status_code == 200 and first_read.count > 0
    with counting() as second_read:
        second = await cached_api.get("/v1/accounts/WWW.Acct03.com", headers=READ)
    assert second_read.count == 0
    assert second.status_code == 200 and second.content == first.content
    assert second.headers["etag"] == first.headers["etag"]
    assert second.headers["content-type"] == "application/json"
    assert second.headers["cache-control"] == "no-cache"
    assert int(second.headers["ratelimit-remaining"]) < int(first.headers["ratelimit-remaining"])
    with counting() as revalidation:
        unchanged = await cached_api.get(
            "/v1/accounts/acct03.com", headers={**READ, "If-None-Match": first.headers["etag"]}
        )
    assert revalidation.count == 0
    assert unchanged.status_code == 304 and unchanged.content == b""
    assert unchanged.headers["etag"] == first.headers["etag"]
    assert "ratelimit-limit" in unchanged.headers


async def test_a_change_is_served_once_notified_and_not_before(
    cached_api: httpx.AsyncClient, pg_url: str
) -> None:
    async def owner() -> str:
        return str((await cached_api.get("/v1/accounts/acct03.com", headers=READ)).json()["owner"])

    assert await owner() == "ann"  # acct03: odd, so ann's (tests/api_server.py)
    # A writer that does not notify: the cached detail stays (proof it is served from memory).
    await write(
        pg_url, "UPDATE accounts SET owner = 'zed', revision = 7 WHERE domain = 'acct03.com'"
    )
    assert await owner() == "ann"
    # The same kind of write, notified in its transaction: the next polls see it.
    await write(
        pg_url,
        "UPDATE accounts SET owner = 'kim', revision = 8 WHERE domain = 'acct03.com'",
        notify=["acct03.com"],
    )

    async def kim() -> bool:
        return await owner() == "kim"

    assert await eventually(kim)

    async def served_from_memory() -> bool:  # once stored again (a busy machine may delay it)
        with counting() as poll:
            assert await owner() == "kim"
        return poll.count == 0

    assert await eventually(served_from_memory)


async def test_a_missed_revalidation_answers_304_and_caches_the_account(
    cached_api: httpx.AsyncClient, pg_url: str
) -> None:
    etag = (await cached_api.get("/v1/accounts/acct05.com", headers=READ)).headers["etag"]
    await write(pg_url, "SELECT 1", notify=["acct05.com"])  # evicted, unchanged

    async def evicted() -> bool:
        with counting() as queries:
            response = await cached_api.get(
                "/v1/accounts/acct05.com", headers={**READ, "If-None-Match": etag}
            )
        assert response.status_code == 304 and response.content == b""
        return queries.count > 0

    assert await eventually(evicted)
    with counting() as queries:
        again = await cached_api.get(
            "/v1/accounts/acct05.com", headers={**READ, "If-None-Match": etag}
        )
    assert again.status_code == 304 and queries.count == 0
    changed = await cached_api.get(
        "/v1/accounts/acct05.com", headers={**READ, "If-None-Match": '"other"'}
    )
    assert changed.status_code == 200 and changed.json()["domain"] == "acct05.com"


async def test_cached_accounts_still_need_a_read_token(cached_api: httpx.AsyncClient) -> None:
    assert (await cached_api.get("/v1/accounts/acct03.com", headers=READ)).status_code == 200
    anonymous = await cached_api.get("/v1/accounts/acct03.com")
    assert anonymous.status_code == 401
    assert anonymous.headers["content-type"] == "application/problem+json"
    unknown = await cached_api.get(
        "/v1/accounts/acct03.com", headers={"Authorization": "Bearer nope"}
    )
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    basic = await cached_api.get("/v1/accounts/acct03.com", headers={"Authorization": "Basic x"})
    assert basic.status_code == 401
    writer = await cached_api.get(
        "/v1/accounts/acct03.com", headers={"Authorization": "Bearer writer"}
    )
    assert writer.status_code == 403 and "read" in writer.json()["detail"]
    both = [("Authorization", "Bearer writer"), ("Authorization", "Bearer reader")]
    first_wins = await cached_api.get("/v1/accounts/acct03.com", headers=both)
    assert first_wins.status_code == 403  # the route reads the first Authorization header
    assert (await cached_api.get("/v1/accounts/missing.com", headers=READ)).status_code == 404
    timeline = await cached_api.get("/v1/accounts/acct03.com/timeline", headers=READ)
    assert timeline.status_code == 200 and "items" in timeline.json()


async def test_cached_accounts_count_against_the_rate_limit(pg_url: str) -> None:
    await seed(pg_url)
    async with serving(pg_url, api_rate_limit_burst=3, api_rate_limit_per_minute=1) as client:
        assert await eventually(lambda: _listening(pg_url))
        answers = [await client.get("/v1/accounts/acct03.com", headers=READ) for _ in range(4)]
    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers.get("ratelimit-remaining") for a in answers[:3]] == ["2", "1", "0"]
    refused = answers[3]
    assert refused.headers["content-type"] == "application/problem+json"
    assert refused.json()["status"] == 429 and int(refused.headers["retry-after"]) >= 1


async def test_a_lost_listener_empties_the_cache_until_listening_again(
    cached_api: httpx.AsyncClient, pg_url: str
) -> None:
    await cached_api.get("/v1/accounts/acct03.com", headers=READ)
    with counting() as hit:
        await cached_api.get("/v1/accounts/acct03.com", headers=READ)
    assert hit.count == 0
    [lost] = await _listener_pids(pg_url)
    await write(pg_url, f"SELECT pg_terminate_backend({lost})")

    async def reconnected() -> bool:
        pids = await _listener_pids(pg_url)
        return bool(pids) and lost not in pids

    assert await eventually(reconnected)
    with counting() as after_loss:
        response = await cached_api.get("/v1/accounts/acct03.com", headers=READ)
    assert response.status_code == 200 and after_loss.count > 0  # forgotten, read again


class Recorder:
    """A sink that remembers what the listener told it."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, tuple[str, ...]]] = []

    def evict(self, domains: Iterable[str]) -> None:
        self.calls.append(("evict", tuple(domains)))

    def clear(self) -> None:
        self.calls.append(("clear", ()))

    def suspend(self) -> None:
        self.calls.append(("suspend", ()))

    def resume(self) -> None:
        self.calls.append(("resume", ()))


async def test_the_listener_relays_committed_changes_only_and_reconnects(pg_url: str) -> None:
    sink = Recorder()
    stop = asyncio.Event()
    listener = AccountChangeListener(asyncpg_dsn(pg_url), [sink], min_backoff_s=0.05)
    task = asyncio.create_task(listener.run(stop))

    async def told(call: tuple[str, tuple[str, ...]]) -> bool:
        return call in sink.calls

    try:
        assert await eventually(lambda: told(("resume", ())))
        engine = db.create_engine(url=pg_url)
        try:
            async with engine.connect() as connection:
                transaction = await connection.begin()
                await notify_accounts_changed(connection, ["rolled.back"])
                await transaction.rollback()
            async with engine.begin() as connection:
                await notify_accounts_changed(connection, ["b.com", "a.com", None])
            async with engine.begin() as connection:
                await notify_accounts_changed(connection, ["bad\nname"])
        finally:
            await engine.dispose()
        assert await eventually(lambda: told(("clear", ())))
        assert sink.calls == [("resume", ()), ("evict", ("a.com", "b.com")), ("clear", ())]
        [pid] = await _listener_pids(pg_url)
        await write(pg_url, f"SELECT pg_terminate_backend({pid})")

        async def resumed_twice() -> bool:
            return sink.calls.count(("resume", ())) == 2

        assert await eventually(resumed_twice)
        after_loss = sink.calls[3:]
        assert after_loss[0] == ("suspend", ()) and after_loss[-1] == ("resume", ())
    finally:
        stop.set()
        await task
    assert sink.calls[-1] == ("suspend", ())


async def test_on_sqlite_nothing_is_cached_so_every_write_shows_at_once(sqlite_url: str) -> None:
    await seed(sqlite_url)
    async with serving(sqlite_url, api_rate_limit_burst=1000) as client:
        first = await client.get("/v1/accounts/acct03.com", headers=READ)
        assert first.json()["owner"] == "ann"
        await write(sqlite_url, "UPDATE accounts SET owner = 'zed' WHERE domain = 'acct03.com'")
        with counting() as queries:
            second = await client.get("/v1/accounts/acct03.com", headers=READ)
    assert second.json()["owner"] == "zed" and queries.count > 0
