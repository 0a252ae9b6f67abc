"""The API with its database out of reach: 503 with Retry-After, in the problem shape,
never a 500 (the request was fine; the dependency is not)."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from typing import Any

import httpx
import pytest
from starlette.types import ASGIApp, Receive, Scope, Send

from services.api.app import create_app
from services.api.settings import ApiSettings
from services.kit import migrate
from tests.api_server import READ, seed
from tests.harness import PostgresCluster, start_postgres

pytestmark = pytest.mark.integration


@pytest.fixture
def own_cluster() -> Iterator[PostgresCluster]:
    """A cluster of this test's own: stopping the shared one would cut the others."""
    cluster = start_postgres()
    try:
        yield cluster
    finally:
        cluster.stop()


async def test_reads_answer_503_while_the_database_is_down(own_cluster: PostgresCluster) -> None:
    url = own_cluster.url(await own_cluster.create_database())
    await asyncio.to_thread(migrate.upgrade, url)
    await seed(url)
    app = create_app(ApiSettings(database_url=url, api_detail_cache_mb=0))
    async with app.router.lifespan_context(app) as state:
        transport = httpx.ASGITransport(app=_with_state(app, dict(state)))
        async with httpx.AsyncClient(transport=transport, base_url="http://api") as client:
            assert (await client.get("/v1/accounts/acct03.com", headers=READ)).status_code == 200
            await asyncio.to_thread(own_cluster.stop)
            for path in ("/v1/accounts/acct03.com", "/v1/accounts", "/v1/surges"):
                response = await client.get(path, headers=READ)
                assert response.status_code == 503, (path, response.text)
                assert response.headers["retry-after"] == "5"
                assert response.headers["content-type"] == "application/problem+json"
                assert response.json()["status"] == 503


def _with_state(app: ASGIApp, state: dict[str, Any]) -> ASGIApp:
    """What a server does with the lifespan's state: a copy in every request's scope."""

    async def asgi(scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            scope = {**scope, "state": dict(state)}
        await app(scope, receive, send)

    return asgi
