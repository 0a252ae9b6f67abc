"""Funnel consumer throughput on PostgreSQL against consume-and-discard."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from schemas import topics
from services.kit import kafka, migrate
from services.kit.broker import start_broker
from tests.harness import produce, stack, start_postgres, wait_for_progress
from tests.streams import generate

ACCOUNTS = 2000
EVENTS_PER_ACCOUNT = 15
MAX_BATCH = 1000


@dataclass(frozen=True)
class PipelineResult:
    events: int
    accounts: int
    max_batch: int
    rate: float
    baseline_rate: float


async def measure_pipeline(scratch: Path) -> PipelineResult:
    events = generate(accounts=ACCOUNTS, events_per_account=EVENTS_PER_ACCOUNT, seed=2)
    broker = start_broker(log_file=scratch / "tansu-pipeline.log")
    cluster = start_postgres()
    try:
        await kafka.wait_for_broker(broker.bootstrap)
        await kafka.ensure_topics(broker.bootstrap)
        await produce(broker.bootstrap, events)
        baseline = await _discard(broker.bootstrap, len(events))
        url = cluster.url(await cluster.create_database())
        await asyncio.to_thread(migrate.upgrade, url)
        elapsed = await _funnel(broker.bootstrap, url, scratch, len(events))
    finally:
        broker.stop()
        cluster.stop()
    return PipelineResult(
        len(events), ACCOUNTS, MAX_BATCH, len(events) / elapsed, len(events) / baseline
    )


async def _discard(bootstrap: str, total: int) -> float:
    consumer = AIOKafkaConsumer(
        topics.EVENTS.name,
        bootstrap_servers=bootstrap,
        group_id="bench-discard",
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_poll_records=MAX_BATCH,
    )
    await consumer.start()
    seen, started = 0, None
    try:
        while seen < total:
            batch = await consumer.getmany(timeout_ms=500, max_records=MAX_BATCH)
            if batch and started is None:
                started = time.perf_counter()
            seen += sum(len(ms) for ms in batch.values())
            await consumer.commit()
    finally:
        await consumer.stop()
    return time.perf_counter() - (started or time.perf_counter())


async def _funnel(bootstrap: str, url: str, scratch: Path, total: int) -> float:
    """From the first committed batch to the last: excludes process start and group join."""
    with stack(url, bootstrap, scratch) as running:
        running.env.update({"ABM_LOG_LEVEL": "WARNING", "ABM_FUNNEL_MAX_BATCH": str(MAX_BATCH)})
        running.start("funnel")
        first = await wait_for_progress(url, beyond=0, timeout_s=120)
        started = time.perf_counter()
        await wait_for_progress(url, beyond=total - 1, timeout_s=600)
        return (time.perf_counter() - started) * total / max(total - first, 1)
