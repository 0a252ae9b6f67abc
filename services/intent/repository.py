"""Intent state in the database: one row per (account, topic) series, one per surge.

Population series are rows too (account ``~population/<partition>``). A row written by an
older detector version (another state shape) is read as a new series: its baseline
restarts, it does not crash the consumer.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Any

from pydantic import ValidationError
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.events import SurgeEnded, SurgeStarted
from schemas.topics import EVENTS, partition_of
from services.intent.detector import SeriesState
from services.intent.processing import SeriesKey
from services.kit.db import RawJson
from services.kit.dialect import is_one_of, upsert_rows, upsert_statement
from services.kit.notify import notify_accounts_changed
from services.kit.tables import intent_series, surges


async def load_series(
    session: AsyncSession, keys: Iterable[SeriesKey]
) -> dict[SeriesKey, SeriesState]:
    """The stored states of ``keys``. Read by account (one array parameter, one prepared
    statement whatever the batch) and filtered here: an account has a few topics, and a
    disjunction of (account, topic) pairs costs SQLAlchemy more to build than it saves."""
    wanted = set(keys)
    accounts = sorted({account for account, _ in wanted})
    states: dict[SeriesKey, SeriesState] = {}
    for start in range(0, len(accounts), 500):
        chunk = accounts[start : start + 500]
        rows = await session.execute(
            select(intent_series.c.account, intent_series.c.topic, intent_series.c.state).where(
                is_one_of(session, intent_series.c.account, chunk)
            )
        )
        for account, topic, doc in rows:
            if (account, topic) not in wanted:
                continue
            state = _restore(doc)
            if state is not None:
                states[(account, topic)] = state
    return states


async def surging_series(session: AsyncSession, partitions: set[int]) -> set[SeriesKey]:
    """The series with an open surge whose account lives on one of ``partitions``."""
    if not partitions:
        return set()
    rows = await session.execute(
        select(surges.c.account, surges.c.topic).where(surges.c.ended_at.is_(None))
    )
    return {
        (account, topic)
        for account, topic in rows
        if partition_of(account, EVENTS.partitions) in partitions
    }


def _restore(doc: Any) -> SeriesState | None:
    """The stored state, or None (a fresh series) if an older detector version wrote it."""
    try:
        return SeriesState.model_validate(doc)
    except ValidationError:
        return None


async def save_series(session: AsyncSession, states: dict[SeriesKey, SeriesState]) -> None:
    rows = [
        {"account": account, "topic": topic, "state": RawJson(state.model_dump_json())}
        for (account, topic), state in states.items()
    ]
    await upsert_rows(session, intent_series, rows, ["account", "topic"])


async def record_surges(
    session: AsyncSession, changes: Sequence[SurgeStarted | SurgeEnded]
) -> None:
    """Open a surge row on start; close the open one of that series on end."""
    for change in changes:
        if isinstance(change, SurgeStarted):
            await session.execute(
                upsert_statement(session, surges)
                .values(
                    event_id=change.event_id,
                    account=change.account,
                    topic=change.topic,
                    started_at=change.occurred_at,
                    score=change.score,
                    baseline=change.baseline,
                    observed=change.observed,
                    detector_version=change.detector_version,
                    trigger_event_ids=list(change.trigger_event_ids),
                    competitor=bool(change.competitor),
                )
                .on_conflict_do_nothing()
            )
        else:
            await session.execute(
                update(surges)
                .where(surges.c.account == change.account)
                .where(surges.c.topic == change.topic)
                .where(surges.c.ended_at.is_(None))
                .values(ended_at=change.occurred_at)
            )
    await notify_accounts_changed(session, (change.account for change in changes))
