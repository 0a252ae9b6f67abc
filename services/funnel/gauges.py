"""Accounts per stage and tier, as Prometheus gauges, from one cheap GROUP BY query.

Run next to the funnel consumer (a ``Sidecar``); every member of the group reports the
same totals, so dashboards take ``max`` over instances, never ``sum``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable

from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit import metrics
from services.kit.stopping import wait_any
from services.kit.tables import accounts

log = logging.getLogger(__name__)

REFRESH_EVERY_S = 15.0

StageTierCount = tuple[str | None, int | None, int]


async def count_accounts(session: AsyncSession) -> list[StageTierCount]:
    query = select(accounts.c.stage, accounts.c.tier, func.count()).group_by(
        accounts.c.stage, accounts.c.tier
    )
    rows = (await session.execute(query)).all()
    return [(stage, tier, int(count)) for stage, tier, count in rows]


def export_counts(counts: Iterable[StageTierCount]) -> None:
    """Replace the gauge's series: a stage/tier pair that emptied disappears."""
    metrics.FUNNEL_ACCOUNTS.clear()
    for stage, tier, count in counts:
        label_tier = "none" if tier is None else str(tier)
        metrics.FUNNEL_ACCOUNTS.labels(stage or "none", label_tier).set(count)


async def refresh_account_gauges(
    sessions: async_sessionmaker[AsyncSession],
    stop: asyncio.Event,
    every_s: float = REFRESH_EVERY_S,
) -> None:
    """Refresh until ``stop`` is set; a database error skips one refresh, never crashes."""
    while not stop.is_set():
        try:
            async with sessions() as session:
                export_counts(await count_accounts(session))
        except (SQLAlchemyError, OSError) as error:
            log.warning("account gauges not refreshed: %r", error)
        await wait_any([stop], every_s)
