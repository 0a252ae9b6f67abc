"""Freshness: from ingest's acknowledgement to the change being visible in
`GET /v1/accounts/{domain}` and on the `/v1/stream` SSE feed, under background load.

The whole stack runs as in production (four processes, the real broker, PostgreSQL) on
this one machine, the load generator included, so the figures are upper bounds.
"""

from __future__ import annotations

import asyncio
import base64
import json
import math
import os
import random
import statistics
import time
import uuid
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import httpx

from bench.http1 import Http1Pool
from bench.wrk import cpu_seconds, tree_cpu_seconds
from services.kit import db, kafka, migrate
from services.kit.broker import free_port, start_broker
from services.kit.credentials import seed_dev_credentials
from tests.harness import ServiceProcess, stack, start_postgres, wait_until_ready

KEY, TOKEN = "bench-key", "bench-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
PROBE_EVERY_S = 0.25
POLL_EVERY_S = 0.05
BACKGROUND_ACCOUNTS = 2000


@dataclass
class FreshnessResult:
    rate: int
    seconds: float
    funnel_replicas: int = 1
    sent: int = 0
    api_ms: list[float] = field(default_factory=list)
    stream_ms: list[float] = field(default_factory=list)
    probes: int = 0
    shed: int = 0
    shed_statuses: Counter[int] = field(default_factory=Counter)  # 0: no answer
    # CPU seconds per component during the load window (services, broker, PostgreSQL with
    # its backends, the load generator): where the machine's cores go at this rate.
    cpu_s: dict[str, float] = field(default_factory=dict)

    def cores(self, component: str) -> float:
        return self.cpu_s[component] / self.seconds

    def cpu_us_per_event(self, component: str) -> float:
        return self.cpu_s[component] / (self.rate * self.seconds) * 1e6

    def quantile(self, samples: list[float], q: float) -> float:
        if not samples:
            return float("nan")
        ordered = sorted(samples)
        return ordered[min(len(ordered) - 1, round(q * (len(ordered) - 1)))]


async def measure_freshness(
    scratch: Path, rate: int, seconds: float, funnel_replicas: int = 1
) -> FreshnessResult:
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
            for _ in range(funnel_replicas - 1):  # more members of the funnel's group
                running.env["ABM_FUNNEL_METRICS_PORT"] = str(free_port())
                running.start("funnel")
            await wait_until_ready(running.url("ingest"))
            await wait_until_ready(running.url("api"))
            components: dict[str, Callable[[], float]] = {
                **_service_cpus(running.processes),
                "broker": partial(cpu_seconds, broker.process.pid),
                "postgres": partial(tree_cpu_seconds, cluster.postmaster_pid()),
                "load generator": partial(cpu_seconds, os.getpid()),
            }
            ingest, api = running.url("ingest"), running.url("api")
            return await _run(ingest, api, rate, seconds, funnel_replicas, components)
    finally:
        broker.stop()
        cluster.stop()


async def _seed(url: str) -> None:
    engine = db.create_engine(url=url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await seed_dev_credentials(session, KEY, TOKEN)
    await engine.dispose()


def _service_cpus(processes: list[ServiceProcess]) -> dict[str, Callable[[], float]]:
    """Each service process's CPU, by name (replicas numbered from the second)."""
    cpus: dict[str, Callable[[], float]] = {}
    for service in processes:
        label, replica = service.name, 1
        while label in cpus:
            replica += 1
            label = f"{service.name} {replica}"
        cpus[label] = partial(cpu_seconds, service.process.pid)
    return cpus


async def _run(
    ingest: str,
    api: str,
    rate: int,
    seconds: float,
    funnel_replicas: int,
    components: dict[str, Callable[[], float]],
) -> FreshnessResult:
    result = FreshnessResult(rate=rate, seconds=seconds, funnel_replicas=funnel_replicas)
    acked: dict[str, float] = {}
    basic = "Basic " + base64.b64encode(f"{KEY}:".encode()).decode()
    async with (
        Http1Pool(ingest, {"Authorization": basic}) as sender,
        Http1Pool(api, AUTH) as reader,
        httpx.AsyncClient(timeout=30, headers=AUTH) as streamer,
    ):
        await _post(sender, [_group(f"probe{i}.com") for i in range(400)])
        bodies = _background_bodies(math.ceil(rate * (seconds + 5) / 100))
        await asyncio.sleep(3)  # the probes are targets before the clock starts
        stop = asyncio.Event()
        tasks = [
            asyncio.create_task(_background(sender, rate, bodies, stop, result)),
            asyncio.create_task(_probes(sender, stop, acked, result)),
            asyncio.create_task(_poll(reader, stop, acked, result)),
            asyncio.create_task(_stream(streamer, api, stop, acked, result)),
        ]
        before = {name: cpu() for name, cpu in components.items()}
        await asyncio.sleep(seconds)
        result.cpu_s = {name: cpu() - before[name] for name, cpu in components.items()}
        await asyncio.sleep(3)  # let the last probes land
        stop.set()
        await asyncio.gather(*tasks, return_exceptions=True)
    return result


async def _post(sender: Http1Pool, batch: list[dict[str, Any]]) -> None:
    body = json.dumps({"batch": batch}).encode()
    status, answer = await sender.request("POST", "/v1/batch", body, "application/json")
    if status != 200:
        raise RuntimeError(f"ingest answered {status}: {answer[:300]!r}")


async def _background(
    sender: Http1Pool,
    rate: int,
    bodies: list[bytes],
    stop: asyncio.Event,
    result: FreshnessResult,
) -> None:
    """Page views for background accounts at ``rate`` events/s, in batches of 100 encoded
    before the clock starts, so the generator's CPU goes to sending, not to building JSON
    (they carry no timestamp: ingest stamps the receipt)."""
    interval = 100 / rate
    next_at = time.monotonic()
    posting: set[asyncio.Task[None]] = set()
    for body in bodies:
        if stop.is_set():
            break
        task = asyncio.create_task(_post_counted(sender, body, result))
        posting.add(task)
        task.add_done_callback(posting.discard)
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    await asyncio.gather(*posting)  # answered before the stack stops: none counted as shed


def _background_bodies(count: int) -> list[bytes]:
    rng = random.Random(1)
    return [
        json.dumps(
            {"batch": [_page(f"bg{rng.randrange(BACKGROUND_ACCOUNTS)}.com") for _ in range(100)]}
        ).encode()
        for _ in range(count)
    ]


async def _post_counted(sender: Http1Pool, body: bytes, result: FreshnessResult) -> None:
    """Background batches are fired at the rate; anything but a 200 (e.g. a 503: ingest
    shedding load) is counted as shed."""
    try:
        status, _ = await sender.request("POST", "/v1/batch", body, "application/json")
    except (OSError, EOFError, ValueError):  # e.g. the stack stopping under a late batch
        status = 0
    if status == 200:
        result.sent += 100
    else:
        result.shed += 100
        result.shed_statuses[status] += 1


async def _probes(
    sender: Http1Pool,
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
        await _post(sender, [event])
        acked[account] = time.monotonic()
        result.probes += 1
        index += 1
        await asyncio.sleep(PROBE_EVERY_S)


async def _poll(
    reader: Http1Pool,
    stop: asyncio.Event,
    acked: dict[str, float],
    result: FreshnessResult,
) -> None:
    """Each acknowledged probe is read every ``POLL_EVERY_S`` until its stage shows; the
    period bounds the measurement's resolution, and keeps the poller's own load from
    growing with the very lag it measures."""
    seen: set[str] = set()
    while not stop.is_set():
        started = time.monotonic()
        for account in [a for a in list(acked) if a not in seen]:
            _, body = await reader.request("GET", f"/v1/accounts/{account}")
            if json.loads(body).get("stage") == "opportunity":
                result.api_ms.append((time.monotonic() - acked[account]) * 1000)
                seen.add(account)
        await asyncio.sleep(max(0.0, POLL_EVERY_S - (time.monotonic() - started)))


async def _stream(
    client: httpx.AsyncClient,  # one long response, read line by line: httpx's cost is per line
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
        "context": {"groupId": account},
        "properties": {"url": "https://vendor.example/docs"},
    }


def render_freshness(results: list[FreshnessResult]) -> str:
    lines = [
        "## Freshness: ingest acknowledgement to visible (API and SSE stream)",
        "",
        "All the services, the broker, PostgreSQL and the load generator share the 2 cores.",
        "Target, issue 6: p99 at most 1 s at 5,000 events/s.",
        "",
        "| background load | probes | API p50 | API p99 | stream p50 | stream p99 |",
        "| ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for r in results:
        q = r.quantile
        api = f"{q(r.api_ms, 0.5):.0f} ms | {q(r.api_ms, 0.99):.0f} ms"
        stream = f"{q(r.stream_ms, 0.5):.0f} ms | {q(r.stream_ms, 0.99):.0f} ms"
        statuses = ", ".join(str(status or "no answer") for status in sorted(r.shed_statuses))
        shed = f" ({r.shed:,} shed: {statuses})" if r.shed else ""
        lines.append(f"| {_label(r)}{shed} | {len(r.api_ms)}/{r.probes} | {api} | {stream} |")
    lines += ["", *_cpu_table(results)]
    return "\n".join(lines)


def _label(result: FreshnessResult) -> str:
    replicas = f", {result.funnel_replicas} funnel processes" if result.funnel_replicas > 1 else ""
    return f"{result.rate:,} events/s{replicas}"


def _cpu_table(results: list[FreshnessResult]) -> list[str]:
    """Cores used per component during the load window, and CPU per background event."""
    measured = [r for r in results if r.cpu_s]
    if not measured:
        return []
    names = list(dict.fromkeys(name for r in measured for name in r.cpu_s))
    header = " | ".join(f"{_label(r)}: cores, µs/event" for r in measured)
    lines = [
        "Where the cores go during the load window (user + system CPU of each process;",
        "PostgreSQL with its backends):",
        "",
        f"| component | {header} |",
        f"| --- |{' ---: |' * len(measured)}",
    ]
    for name in names:
        cells = " | ".join(
            f"{r.cores(name):.2f}, {r.cpu_us_per_event(name):,.0f}" if name in r.cpu_s else "-"
            for r in measured
        )
        lines.append(f"| {name} | {cells} |")
    totals = " | ".join(
        f"**{sum(r.cpu_s.values()) / r.seconds:.2f}**, "
        f"{sum(r.cpu_s.values()) / (r.rate * r.seconds) * 1e6:,.0f}"
        for r in measured
    )
    lines += [f"| all | {totals} |", ""]
    return lines


def summary(result: FreshnessResult) -> str:
    api, stream = result.quantile(result.api_ms, 0.99), result.quantile(result.stream_ms, 0.99)
    mean = statistics.fmean(result.api_ms or [0])
    return (
        f"freshness @ {_label(result)}: api p99 {api:.0f} ms, stream p99 {stream:.0f} ms "
        f"({len(result.api_ms)}/{result.probes} probes, mean {mean:.0f} ms, shed {result.shed})"
    )
