"""The I/O around `abm replay`: events from a file or the topics, live state from the
database, results to stdout and optionally a file of states."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path

from aiokafka import AIOKafkaConsumer, TopicPartition
from sqlalchemy import select

from schemas import topics
from services.funnel.config import load_funnel_config
from services.funnel.replay import (
    compare,
    dump_states,
    read_event_file,
    render_comparison,
    replay,
    summary,
)
from services.kit import db
from services.kit.settings import CommonSettings
from services.kit.tables import accounts


async def read_topics(bootstrap: str, idle_polls: int = 3) -> list[bytes]:
    """Every record of the events and surges topics, from the beginning to the high-water
    marks seen in fetch responses (``end_offsets`` is not trusted: Tansu answers it wrong)."""
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
        values: list[bytes] = []
        idle = 0
        while idle < idle_polls:
            batch = await consumer.getmany(timeout_ms=500, max_records=10_000)
            values += [m.value for messages in batch.values() for m in messages if m.value]
            idle = 0 if batch else idle + 1
        return values
    finally:
        await consumer.stop()


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
) -> None:
    funnel_config = load_funnel_config(config)
    source = (
        read_event_file(events) if events else asyncio.run(read_topics(settings.kafka_bootstrap))
    )
    result = replay(source, funnel_config)
    print(json.dumps({"config_version": funnel_config.version, **summary(result)}, indent=2))
    if out is not None:
        dump_states(result.states, out)
        print(f"states written to {out}")
    if compare_live:
        print(
            render_comparison(
                compare(result.states, asyncio.run(live_state(settings.database_url)))
            )
        )
