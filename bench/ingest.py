"""Ingest throughput against a bare producer on the same broker."""

from __future__ import annotations

import asyncio
import json
import statistics
import time
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from bench.wrk import cpu_seconds
from services.ingest.collect import collect
from services.ingest.identity import VisitorAccounts
from services.ingest.segment import Received
from services.kit import db, kafka, migrate
from services.kit.broker import start_broker
from services.kit.credentials import store_write_key
from services.kit.publish import produce_events
from services.kit.settings import CommonSettings
from tests.harness import stack, wait_until_ready

BATCH = 100
BATCHES = 300
CONCURRENCY = 8
KEY = "bench-key"


@dataclass(frozen=True)
class IngestResult:
    events: int
    concurrency: int
    rate: float
    p50_ms: float
    p99_ms: float
    baseline_rate: float
    baseline_p50_ms: float
    baseline_p99_ms: float
    # CPU per event: the bare producer's (this process), ingest's (its process), and
    # ingest's collect step alone (validate, resolve, map; in this process, no I/O).
    baseline_cpu_us: float
    cpu_us: float
    collect_cpu_us: float

    @property
    def ratio(self) -> float:
        return self.rate / self.baseline_rate

    @property
    def cpu_bound_ratio(self) -> float:
        """The ratio one ingest process could reach if it were CPU-bound like the producer
        and spent nothing on HTTP: the producer's work over the producer's plus collect's."""
        return self.baseline_cpu_us / (self.baseline_cpu_us + self.collect_cpu_us)


def batches() -> list[list[dict[str, Any]]]:
    now = datetime.now(UTC).isoformat()
    return [
        [
            {
                "type": "page",
                "messageId": uuid.uuid4().hex,
                "anonymousId": f"v{i}",
                "timestamp": now,
                "context": {"groupId": f"account-{(b * BATCH + i) % 5000}.com"},
                "properties": {"url": f"https://vendor.example/p/{i}", "title": "A page"},
            }
            for i in range(BATCH)
        ]
        for b in range(BATCHES)
    ]


async def _timed_concurrently(jobs: list[Any], send: Any) -> tuple[float, list[float]]:
    queue: asyncio.Queue[Any] = asyncio.Queue()
    for job in jobs:
        queue.put_nowait(job)
    latencies: list[float] = []

    async def worker() -> None:
        while not queue.empty():
            job = queue.get_nowait()
            started = time.perf_counter()
            await send(job)
            latencies.append(time.perf_counter() - started)

    started = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(CONCURRENCY)))
    return time.perf_counter() - started, latencies


def _p(latencies: list[float], q: int) -> float:
    return statistics.quantiles(latencies, n=100)[q - 1] * 1000


async def measure_ingest(scratch: Path) -> IngestResult:
    async with ingest_environment(scratch, KEY) as (bootstrap, url):
        work = batches()
        baseline, baseline_latencies, baseline_cpu = await _bare_producer(bootstrap, work)
        elapsed, latencies, ingest_cpu = await _through_ingest(bootstrap, url, scratch, work)
    events = BATCH * BATCHES
    collect_cpu = _collect_cpu(work)
    return IngestResult(
        events,
        CONCURRENCY,
        events / elapsed,
        _p(latencies, 50),
        _p(latencies, 99),
        events / baseline,
        _p(baseline_latencies, 50),
        _p(baseline_latencies, 99),
        baseline_cpu / events * 1e6,
        ingest_cpu / events * 1e6,
        collect_cpu / events * 1e6,
    )


def _collect_cpu(work: list[list[dict[str, Any]]], rounds: int = 3) -> float:
    """CPU seconds of ingest's collect step over ``work``, the best of ``rounds``."""
    received = Received(at=datetime.now(UTC), source="bench")
    best = float("inf")
    for _ in range(rounds):
        visitors = VisitorAccounts()
        started = time.process_time()
        for batch in work:
            collect(batch, received, visitors, 32 * 1024)
        best = min(best, time.process_time() - started)
    return best


@asynccontextmanager
async def ingest_environment(scratch: Path, key: str) -> AsyncIterator[tuple[str, str]]:
    """A fresh broker with the topics, and a migrated SQLite database holding write key
    ``key``: (bootstrap servers, database URL)."""
    broker = start_broker(log_file=scratch / f"tansu-{key}.log")
    url = f"sqlite+aiosqlite:///{scratch / f'{key}.db'}"
    try:
        await kafka.wait_for_broker(broker.bootstrap)
        await kafka.ensure_topics(broker.bootstrap)
        await asyncio.to_thread(migrate.upgrade, url)
        engine = db.create_engine(url=url)
        async with db.create_sessionmaker(engine)() as session, session.begin():
            await store_write_key(session, key, "bench")
        await engine.dispose()
        yield broker.bootstrap, url
    finally:
        broker.stop()


@asynccontextmanager
async def serving_ingest(bootstrap: str, url: str, scratch: Path) -> AsyncIterator[tuple[str, int]]:
    """``abm ingest`` in its own process, as deployed (quiet logs), once ready: its base
    URL and process id."""
    with stack(url, bootstrap, scratch) as running:
        running.env["ABM_LOG_LEVEL"] = "WARNING"
        pid = running.start("ingest").process.pid
        await wait_until_ready(running.url("ingest"))
        yield running.url("ingest"), pid


async def _bare_producer(
    bootstrap: str, work: list[list[dict[str, Any]]]
) -> tuple[float, list[float], float]:
    """The same events, already mapped, produced with acks=all: the ceiling. Seconds,
    batch latencies, and this process's CPU seconds meanwhile."""
    received = Received(at=datetime.now(UTC), source="bench")
    mapped = [collect(b, received, VisitorAccounts(), 32 * 1024).events for b in work]
    # Our producers' settings and records (acks=all, no linger, keyed by account).
    producer = kafka.create_producer(CommonSettings(kafka_bootstrap=bootstrap))
    await producer.start()

    async def send(events: list[Any]) -> None:
        await produce_events(producer, events, timeout_s=30)

    try:
        cpu = time.process_time()
        elapsed, latencies = await _timed_concurrently(mapped, send)
        return elapsed, latencies, time.process_time() - cpu
    finally:
        await producer.stop()


async def _through_ingest(
    bootstrap: str, url: str, scratch: Path, work: list[list[dict[str, Any]]]
) -> tuple[float, list[float], float]:
    """Seconds, batch latencies, and the ingest process's CPU seconds meanwhile."""
    async with serving_ingest(bootstrap, url, scratch) as (base, pid):
        bodies = [json.dumps({"batch": b}).encode() for b in work]
        headers = {"Content-Type": "application/json"}
        async with httpx.AsyncClient(base_url=base, auth=(KEY, ""), timeout=30) as client:

            async def send(body: bytes) -> None:
                response = await client.post("/v1/batch", content=body, headers=headers)
                response.raise_for_status()

            cpu = cpu_seconds(pid)
            elapsed, latencies = await _timed_concurrently(bodies, send)
            return elapsed, latencies, cpu_seconds(pid) - cpu
