"""The API with its database out of reach: 503 with Retry-After, in the problem shape,
never a 500 (the request was fine; the dependency is not)."""

from __future__ import annotations

import asyncio

import pytest

from services.api.settings import ApiSettings
from services.kit import migrate
from tests.api_server import READ, in_process, seed
from tests.harness import PostgresCluster

pytestmark = pytest.mark.integration


async def test_reads_answer_503_while_the_database_is_down(own_postgres: PostgresCluster) -> None:
    url = own_postgres.url(await own_postgres.create_database())
    await asyncio.to_thread(migrate.upgrade, url)
    await seed(url)
    async with in_process(ApiSettings(database_url=url, api_detail_cache_mb=0)) as (client, _):
        assert (await client.get("/v1/accounts/acct03.com", headers=READ)).status_code == 200
        await asyncio.to_thread(own_postgres.stop)
        for path in ("/v1/accounts/acct03.com", "/v1/accounts", "/v1/surges"):
            response = await client.get(path, headers=READ)
            assert response.status_code == 503, (path, response.text)
            assert response.headers["retry-after"] == "5"
            assert response.headers["content-type"] == "application/problem+json"
            assert response.json()["status"] == 503
