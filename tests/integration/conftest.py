"""Fixtures shared by the integration tests of the API."""

from __future__ import annotations

from collections.abc import AsyncIterator

import httpx
import pytest

from tests.api_server import seed, serving


@pytest.fixture
async def api(pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    """The API on a seeded PostgreSQL database: 25 target accounts, 10 engaged, one surging."""
    await seed(pg_url)
    async with serving(pg_url, api_rate_limit_burst=1000) as client:
        yield client
