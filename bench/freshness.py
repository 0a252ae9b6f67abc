"""Freshness: from ingest's acknowledgement to the change being visible in
`GET /v1/accounts/{domain}` and on the `/v1/stream` SSE feed, under background load.

The whole stack runs as in production (four processes, the real broker, PostgreSQL) on
this one machine, the load generator included, so the figures are upper bounds.
"""

from __future__ import annotations

import asyncio
import json
import random
import statistics
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx

from services.kit import db, kafka, migrate
from services.kit.broker import start_broker
from services.kit.credentials import seed_dev_credentials
from tests.harness import stack, start_postgres, wait_until_ready

KEY, TOKEN = "bench-key", "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBE_EVERY_S = 0.25
BACKGROUND_ACCOUNTS = 2000


@dataclass
class FreshnessResult:
    rate: int
    seconds: float
    sent: int = 0
    api_ms: list[float] = field(default_factory=list)
    stream_ms: list[float] = field(default_factory=list)
    probes: int = 0
    shed: int = 0

    def quantile(self, samples: list[float], q: float) -> float:
        if not samples:
            return float("nan")
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_freshness(scratch: Path, rate: int, seconds: float) -> FreshnessResult:
    broker = start_broker(log_file=scratch / f"tansu-fresh-{rate}.log")
    cluster = start_postgres()
    try:
        await kafka.wait_for_broker(broker.bootstrap)
        await kafka.ensure_topics(broker.bootstrap)
        url = cluster.url(await cluster.create_database())
        await asyncio.to_thread(migrate.upgrade, url)
        await _seed(url)
        with stack(url, broker.bootstrap, scratch) as running:
            running.env["ABM_LOG_LEVEL"] = "WARNING"
            for name in ("ingest", "intent", "funnel", "api"):
                running.start(name)
            await wait_until_ready(running.url("ingest"))
            await wait_until_ready(running.url("api"))
            return await _run(running.url("ingest"), running.url("api"), rate, seconds)
    finally:
        broker.stop()
        cluster.stop()


async def _seed(url: str) -> None:
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await seed_dev_credentials(session, KEY, TOKEN)
    await engine.dispose()


async def _run(ingest: str, api: str, rate: int, seconds: float) -> FreshnessResult:
    result = FreshnessResult(rate=rate, seconds=seconds)
    acked: dict[str, float] = {}
    async with (
        httpx.AsyncClient(timeout=30, auth=(KEY, "")) as sender,
        httpx.AsyncClient(timeout=30, headers=AUTH) as reader,
    ):
        await _post(sender, ingest, [_group(f"probe{i}.com") for i in range(400)])
        await asyncio.sleep(3)  # the probes are targets before the clock starts
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(_background(sender, ingest, rate, stop, result)),
            asyncio.create_task(_probes(sender, ingest, stop, acked, result)),
            asyncio.create_task(_poll(reader, api, stop, acked, result)),
            asyncio.create_task(_stream(reader, api, stop, acked, result)),
        ]
        await asyncio.sleep(seconds)
        await asyncio.sleep(3)  # let the last probes land
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def _post(client: httpx.AsyncClient, ingest: str, batch: list[dict[str, Any]]) -> None:
    response = await client.post(f"{ingest}/v1/batch", json={"batch": batch})
    response.raise_for_status()


async def _background(
    client: httpx.AsyncClient, ingest: str, rate: int, stop: asyncio.Event, result: FreshnessResult
) -> None:
    """Page views for background accounts at ``rate`` events/s, in batches of 100."""
    rng = random.Random(1)
    interval = 100 / rate
    next_at = time.monotonic()
    while not stop.is_set():
        batch = [_page(f"bg{rng.randrange(BACKGROUND_ACCOUNTS)}.com") for _ in range(100)]
        asyncio.create_task(_post_counted(client, ingest, batch, result))  # noqa: RUF006
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))


async def _post_counted(
    client: httpx.AsyncClient, ingest: str, batch: list[dict[str, Any]], result: FreshnessResult
) -> None:
    """Background batches are fired at the rate; a 503 (ingest shedding load) is counted."""
    try:
        await _post(client, ingest, batch)
        result.sent += len(batch)
    except httpx.HTTPError:
        result.shed += len(batch)


async def _probes(
    client: httpx.AsyncClient,
    ingest: str,
    stop: asyncio.Event,
    acked: dict[str, float],
    result: FreshnessResult,
) -> None:
    """Every 250 ms one probe account opens an opportunity: a stage change to watch."""
    index = 0
    while not stop.is_set() and index < 400:
        account = f"probe{index}.com"
        event = {
            "type": "track",
            "event": "Opportunity Created",
            "messageId": uuid.uuid4().hex,
            "context": {"groupId": account},
            "properties": {"opportunity_id": f"o{index}"},
        }
        await _post(client, ingest, [event])
        acked[account] = time.monotonic()
        result.probes += 1
        index += 1
        await asyncio.sleep(PROBE_EVERY_S)


async def _poll(
    client: httpx.AsyncClient,
    api: str,
    stop: asyncio.Event,
    acked: dict[str, float],
    result: FreshnessResult,
) -> None:
    seen: set[str] = set()
    while not stop.is_set():
        pending = [a for a in list(acked) if a not in seen]
        for account in pending:
            body = (await client.get(f"{api}/v1/accounts/{account}")).json()
            if body.get("stage") == "opportunity":
                result.api_ms.append((time.monotonic() - acked[account]) * 1000)
                seen.add(account)
        await asyncio.sleep(0.01)


async def _stream(
    client: httpx.AsyncClient,
    api: str,
    stop: asyncio.Event,
    acked: dict[str, float],
    result: FreshnessResult,
) -> None:
    async with client.stream("GET", f"{api}/v1/stream", timeout=None) as response:
        async for line in response.aiter_lines():
            if stop.is_set():
                return
            if not line.startswith("data: "):
                continue
            change = json.loads(line[6:])
            account = change.get("account")
            if change.get("to_stage") == "opportunity" and account in acked:
                result.stream_ms.append((time.monotonic() - acked[account]) * 1000)


def _group(account: str) -> dict[str, Any]:
    return {
        "type": "group",
        "messageId": uuid.uuid4().hex,
        "groupId": account,
        "traits": {"name": account, "target": True},
    }


def _page(account: str) -> dict[str, Any]:
    return {
        "type": "page",
        "messageId": uuid.uuid4().hex,
        "anonymousId": account,
        "timestamp": datetime.now(UTC).isoformat(),
        "context": {"groupId": account},
        "properties": {"url": "https://vendor.example/docs"},
    }


def render_freshness(results: list[FreshnessResult]) -> str:
    lines = [
        "## Freshness: ingest acknowledgement to visible (API and SSE stream)",
        "",
        "All four services, the broker, PostgreSQL and the load generator share the 2 cores.",
        "Target, issue 6: p99 at most 1 s at 5,000 events/s.",
        "",
        "| background load | probes | API p50 | API p99 | stream p50 | stream p99 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        q = r.quantile
        api = f"{q(r.api_ms, 0.5):.0f} ms | {q(r.api_ms, 0.99):.0f} ms"
        stream = f"{q(r.stream_ms, 0.5):.0f} ms | {q(r.stream_ms, 0.99):.0f} ms"
        shed = f" ({r.shed:,} shed with 503)" if r.shed else ""
        lines.append(
            f"| {r.rate:,} events/s{shed} | {len(r.api_ms)}/{r.probes} | {api} | {stream} |"
        )
    lines.append("")
    return "\n".join(lines)


def summary(result: FreshnessResult) -> str:
    api, stream = result.quantile(result.api_ms, 0.99), result.quantile(result.stream_ms, 0.99)
    mean = statistics.fmean(result.api_ms or [0])
    return (
        f"freshness @ {result.rate}/s: api p99 {api:.0f} ms, stream p99 {stream:.0f} ms "
        f"({len(result.api_ms)}/{result.probes} probes, mean {mean:.0f} ms, shed {result.shed})"
    )
