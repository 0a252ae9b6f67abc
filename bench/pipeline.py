"""Funnel consumer throughput on PostgreSQL against consume-and-discard, with the ceiling
the pure core alone sets (the same events, in-process, no I/O)."""

from __future__ import annotations

import asyncio
import gc
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from aiokafka import AIOKafkaConsumer

from bench.wrk import cpu_seconds
from schemas import topics
from schemas.events import Event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events_with_facts
from services.funnel.state import AccountState
from services.kit import kafka, migrate
from services.kit.broker import start_broker
from services.kit.gc_tuning import YOUNG_GENERATION_THRESHOLD
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
    cpu_us_per_event: float  # the funnel process's user + system CPU
    core_rate: float  # the pure core alone, in this process
    core_us_per_event: float


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
        elapsed, cpu_s = await _funnel(broker.bootstrap, url, scratch, len(events))
    finally:
        broker.stop()
        cluster.stop()
    core_s = measure_core(events)
    return PipelineResult(
        len(events),
        ACCOUNTS,
        MAX_BATCH,
        len(events) / elapsed,
        len(events) / baseline,
        cpu_s / len(events) * 1e6,
        len(events) / core_s,
        core_s / len(events) * 1e6,
    )


def measure_core(events: Sequence[Event], rounds: int = 3) -> float:
    """CPU seconds of the funnel's pure core over ``events`` in batches of ``MAX_BATCH``, as
    the consumer runs it (its collector settings), the best of ``rounds``: what one process
    could reach with every write, read and decode free."""
    config = FunnelConfig()
    best = float("inf")
    with _consumer_gc():
        for _ in range(rounds):
            states: dict[str, AccountState] = {}
            started = time.process_time()
            for start in range(0, len(events), MAX_BATCH):
                changed, _, _ = apply_events_with_facts(
                    states, events[start : start + MAX_BATCH], config
                )
                states.update(changed)
            best = min(best, time.process_time() - started)
    return best


@contextmanager
def _consumer_gc() -> Iterator[None]:
    """The consumers' young-generation threshold (``gc_tuning``), restored afterwards."""
    thresholds = gc.get_threshold()
    gc.collect()
    gc.set_threshold(YOUNG_GENERATION_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


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


async def _funnel(bootstrap: str, url: str, scratch: Path, total: int) -> tuple[float, float]:
    """Seconds and the process's CPU seconds, from the first committed batch to the last
    (process start and group join left out), scaled to ``total`` events."""
    with stack(url, bootstrap, scratch) as running:
        running.env.update({"ABM_LOG_LEVEL": "WARNING", "ABM_FUNNEL_MAX_BATCH": str(MAX_BATCH)})
        pid = running.start("funnel").process.pid
        first = await wait_for_progress(url, beyond=0, timeout_s=120)
        started, cpu = time.perf_counter(), cpu_seconds(pid)
        await wait_for_progress(url, beyond=total - 1, timeout_s=600)
        scale = total / max(total - first, 1)
        return (time.perf_counter() - started) * scale, (cpu_seconds(pid) - cpu) * scale
