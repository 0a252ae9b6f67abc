"""Readiness and migrations across a rolling upgrade: a database behind the code is not
ready; one at the code's head, or migrated by a newer release first, is."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text

from services.kit import db, migrate
from services.kit.health import database_problems

pytestmark = pytest.mark.integration


async def problems_at(url: str) -> dict[str, str]:
    engine = db.create_engine(url=url)
    try:
        return await database_problems(engine)
    finally:
        await engine.dispose()


async def set_revision(url: str, revision: str) -> None:
    engine = db.create_engine(url=url)
    async with engine.begin() as connection:
        await connection.execute(
            text("UPDATE alembic_version SET version_num = :r"), {"r": revision}
        )
    await engine.dispose()


async def test_ready_at_head_and_after_a_newer_release_migrated(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'abm.db'}"
    await asyncio.to_thread(migrate.upgrade, url, "0001")
    assert await problems_at(url) == {"database": "migrations not at head"}
    await asyncio.to_thread(migrate.upgrade, url)
    assert await problems_at(url) == {}
    await set_revision(url, "9999_from_a_newer_release")
    assert await problems_at(url) == {}
