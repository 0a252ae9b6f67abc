"""The I/O around `abm replay`: events from a file or the topics, live state from the
database, results to stdout and optionally a file of states.

The events and surges topics (or the file) are applied in replay order (see
``replay_order``): each partition in offset order, partitions merged by ``received_at``,
events before surges at equal times; never in the order the fetches happened to return."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterable
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import make_url, select

from schemas import topics
from services.funnel.config import FunnelConfig, load_funnel_config
from services.funnel.replay import (
    Replay,
    ReplayBatch,
    compare,
    dump_states,
    read_event_file,
    render_comparison,
    replay,
    replay_batches,
    summary,
)
from services.funnel.replay_order import (
    Record,
    file_records,
    in_replay_order,
    values_in_replay_order,
)
from services.funnel.service import FunnelHandler
from services.kit import db, migrate
from services.kit.settings import CommonSettings
from services.kit.tables import (
    account_changes,
    account_events,
    account_transitions,
    accounts,
    activity_daily,
    campaign_spend,
    nps_answers,
    revenue_events,
)

_STALLED_POLLS = 20  # empty fetches in a row, with partitions behind, before giving up


async def read_topics(bootstrap: str, idle_polls: int = 3) -> list[bytes]:
    """The values of every record of the events and surges topics, in replay order."""
    return values_in_replay_order(await read_records(bootstrap, idle_polls))


async def read_records(bootstrap: str, idle_polls: int = 3) -> list[Record]:
    """Every record of the events and surges topics, with its topic, partition and offset,
    in the order fetched (``replay_order.in_replay_order`` makes that order irrelevant).

    Reads to the high-water marks seen in fetch responses (``end_offsets`` is not trusted:
    Tansu answers it wrong): done after ``idle_polls`` empty fetches in a row with every
    partition at its high-water mark."""
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
    await consumer.start()
    try:
        await consumer.topics()  # loads the cluster metadata
        partitions = [
            TopicPartition(topic.name, p)
            for topic in (topics.EVENTS, topics.SURGES)
            for p in sorted(consumer.partitions_for_topic(topic.name) or set())
        ]
        consumer.assign(partitions)
        await consumer.seek_to_beginning(*partitions)
        records: list[Record] = []
        idle = 0
        while idle < idle_polls or (behind := await _behind(consumer, partitions)):
            if idle >= idle_polls + _STALLED_POLLS:
                raise RuntimeError(f"replay stalled below the high-water marks of {behind}")
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            records += [
                Record(m.topic, m.partition, m.offset, m.value)
                for messages in batch.values()
                for m in messages
                if m.value
            ]
            idle = 0 if batch else idle + 1
        return records
    finally:
        await consumer.stop()


async def _behind(
    consumer: AIOKafkaConsumer, partitions: list[TopicPartition]
) -> list[TopicPartition]:
    """The partitions not read up to the high-water mark of their last fetch response."""
    behind = []
    for partition in partitions:
        highwater = consumer.highwater(partition)
        if highwater is not None and await consumer.position(partition) < highwater:
            behind.append(partition)
    return behind


async def live_state(database_url: str) -> dict[str, tuple[str | None, int | None]]:
    engine = db.create_engine(url=database_url)
    try:
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(accounts.c.domain, accounts.c.stage, accounts.c.tier)
            )
            return {domain: (stage, tier) for domain, stage, tier in rows}
    finally:
        await engine.dispose()


def run_replay(
    settings: CommonSettings,
    events: Path | None,
    config: Path | None,
    out: Path | None,
    compare_live: bool,
    into: str | None = None,
    timeline_days: float = 30.0,
) -> None:
    """Replay, print the summary; then, as asked, write the states to ``out``, compare them
    with the live database, and write everything the funnel keeps into the database
    ``into`` (migrated first; it must hold no funnel state)."""
    funnel_config = load_funnel_config(config)
    records = (
        file_records(read_event_file(events))
        if events
        else asyncio.run(read_records(settings.kafka_bootstrap))
    )
    ordered = in_replay_order(records)
    if into is None:
        result = replay(ordered, funnel_config)
    else:
        migrate.upgrade(into)
        result = Replay()
        batches = replay_batches(ordered, funnel_config, result)
        asyncio.run(write_replay(into, batches, funnel_config, timeline_days))
    print(json.dumps({"config_version": funnel_config.version, **summary(result)}, indent=2))
    if into is not None:
        print(f"funnel state written to {make_url(into).render_as_string(hide_password=True)}")
    if out is not None:
        dump_states(result.states, out)
        print(f"states written to {out}")
    if compare_live:
        print(
            render_comparison(
                compare(result.states, asyncio.run(live_state(settings.database_url)))
            )
        )


class ReplayTargetNotEmpty(RuntimeError):
    """``abm replay --into`` refuses a database that holds funnel state already."""


# What the funnel writes (besides its consumer bookkeeping): a replay writes all of them.
FUNNEL_TABLES = (
    accounts,
    account_transitions,
    account_events,
    account_changes,
    activity_daily,
    campaign_spend,
    nps_answers,
    revenue_events,
)


async def write_replay(
    url: str, batches: Iterable[ReplayBatch], config: FunnelConfig, timeline_days: float
) -> None:
    """Write each replayed batch into the database at ``url`` as the funnel consumer writes
    a batch (``FunnelHandler.store``): states, history, KPI facts, change feed, timeline.
    Consumer offsets and applied ids are not written: the database is for reading (the API
    serves it), not for a consumer to continue from."""
    engine = db.create_engine(url=url)
    try:
        sessions = db.create_sessionmaker(engine)
        async with engine.connect() as connection:
            for table in FUNNEL_TABLES:
                if await connection.scalar(select(table).limit(1).exists().select()):
                    raise ReplayTargetNotEmpty(
                        f"{table.name} is not empty: replay into a new database"
                    )
        handler = FunnelHandler(config, cache_size=0, timeline_days=timeline_days)
        for batch in batches:
            async with sessions() as session, session.begin():
                await handler.store(
                    session, batch.events, batch.changed, batch.outputs, batch.facts
                )
        async with sessions() as session, session.begin():
            await handler.prune_timeline(session)
    finally:
        await engine.dispose()
