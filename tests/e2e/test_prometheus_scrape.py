"""A real Prometheus scrapes the five running services (real broker, real PostgreSQL):
every metric the dashboards and alert rules use exists, the alert rules load, and the
event counters move when events flow through ingest."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import httpx
import pytest

from schemas import topics
from services.kit.broker import EmbeddedBroker
from tests import metrics_contract as contract
from tests.e2e.test_pipeline import WRITE_KEY, seed
from tests.harness import Stack, wait_until_ready
from tests.prometheus_server import PrometheusServer, scrape_config, start_prometheus

pytestmark = pytest.mark.e2e

SERVICES = ("ingest", "intent", "funnel", "stitch", "api")
EVENTS = topics.EVENTS.name


def ops_address(stack: Stack, name: str) -> str:
    """host:port of a service's /metrics (the consumers serve it on their metrics port)."""
    env = stack.env
    port = env.get(f"ABM_{name.upper()}_METRICS_PORT") or env[f"ABM_{name.upper()}_PORT"]
    return f"127.0.0.1:{port}"


@pytest.fixture
async def prometheus(
    services: Stack, pg_url: str, tmp_path: Path
) -> AsyncIterator[PrometheusServer]:
    await seed(pg_url)
    services.env.update({"ABM_LOG_LEVEL": "DEBUG", "ABM_LOG_JSON": "true"})
    for name in SERVICES:
        services.start(name)
    targets = {name: ops_address(services, name) for name in SERVICES}
    await asyncio.gather(*(wait_until_ready(f"http://{t}") for t in targets.values()))
    server = await start_prometheus(tmp_path, scrape_config(targets, [contract.ALERTS]))
    try:
        yield server
    finally:
        server.stop()


def batch(count: int) -> list[dict[str, Any]]:
    now = datetime.now(UTC).isoformat()
    calls: list[dict[str, Any]] = [
        {"type": "group", "messageId": uuid.uuid4().hex, "timestamp": now,
         "groupId": f"acct{i}.com", "traits": {"name": f"A{i}", "target": True}}
        for i in range(count)
    ]  # fmt: skip
    calls += [
        {"type": "page", "messageId": uuid.uuid4().hex, "timestamp": now, "anonymousId": f"v{i}",
         "context": {"groupId": f"acct{i}.com"}, "properties": {"url": "https://x.io/pricing"}}
        for i in range(count)
    ]  # fmt: skip
    calls.append({"type": "page", "messageId": "bad", "timestamp": "yesterday"})  # rejected
    return calls


async def value(prometheus: PrometheusServer, expr: str) -> float:
    result = await prometheus.query(expr)
    return float(result[0]["value"][1]) if result else 0.0


async def test_prometheus_sees_every_used_metric_and_counters_move(
    prometheus: PrometheusServer, services: Stack, broker: EmbeddedBroker
) -> None:
    up = await prometheus.wait_for(f"count(up == 1) == {len(SERVICES)}")
    assert up
    produced = f'sum(abm_ingest_produced_total{{topic="{EVENTS}"}})'
    before = float((await prometheus.wait_for(produced))[0]["value"][1])

    async with httpx.AsyncClient(timeout=10) as client:
        response = await client.post(
            f"{services.url('ingest')}/v1/batch", json={"batch": batch(5)}, auth=(WRITE_KEY, "")
        )
    assert response.status_code == 200, response.text
    assert response.json()["accepted"] == 10
    assert response.headers["X-Request-ID"]

    await prometheus.wait_for(f"{produced} >= {before + 10}")
    for group in (topics.INTENT_GROUP, topics.FUNNEL_GROUP):
        consumed = f'abm_consumer_consumed_total{{group="{group}",topic="{EVENTS}"}}'
        await prometheus.wait_for(f"{consumed} >= 10")
    await prometheus.wait_for(f"increase({produced.removeprefix('sum(')[:-1]}[1m]) > 0")
    assert await value(prometheus, 'sum(abm_ingest_events_total{outcome="accepted"})') >= 10
    assert await value(prometheus, "sum(abm_ingest_dead_lettered_total)") >= 1
    assert await value(prometheus, "sum(abm_funnel_stage_transitions_total)") >= 1
    assert await value(prometheus, "max(abm_ingest_newest_event_timestamp_seconds)") > 0

    exposed = await prometheus.metadata_names()
    series = contract.series_names()
    missing = {name for name in contract.used_series() if not {name, series[name].name} & exposed}
    assert not missing, f"used by dashboards/alerts but not scraped: {sorted(missing)}"
    await _assert_rules_loaded(prometheus)
    _assert_event_ids_correlate(services, response.headers["X-Request-ID"])


async def _assert_rules_loaded(prometheus: PrometheusServer) -> None:
    async with httpx.AsyncClient(timeout=5) as client:
        response = await client.get(f"{prometheus.url}/api/v1/rules")
    groups = response.json()["data"]["groups"]
    loaded = {rule["name"] for group in groups for rule in group["rules"]}
    assert loaded == {rule["alert"] for rule in contract.alert_rules()}
    unhealthy = [r["name"] for g in groups for r in g["rules"] if r["health"] == "err"]
    assert not unhealthy


def json_lines(stack: Stack, name: str) -> list[dict[str, Any]]:
    (process,) = [p for p in stack.processes if p.name == name]
    lines = process.log.read_text().splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def _assert_event_ids_correlate(stack: Stack, request_id: str) -> None:
    """The event id follows an event from ingest (with the request id) to the consumers;
    no log line carries a raw IP address."""
    accepted = {
        line["event_id"]: line.get("type")
        for line in json_lines(stack, "ingest")
        if line.get("request_id") == request_id and "event_id" in line
    }
    assert len(accepted) == 10
    # The funnel applies every event; intent passes over all but the page views it uses.
    page_views = {event_id for event_id, kind in accepted.items() if kind == "page_viewed"}
    assert len(page_views) == 5
    for name, expected in (("funnel", set(accepted)), ("intent", page_views)):
        applied = {line.get("event_id") for line in json_lines(stack, name)}
        assert expected <= applied, name
    for process in stack.processes:
        assert "127.0.0.1" not in process.log.read_text(), process.name
