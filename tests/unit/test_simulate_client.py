"""``abm simulate``: batching, the ingest client (retries, Retry-After) and the runner."""

from __future__ import annotations

import base64
import json
from datetime import datetime
from typing import Any

import httpx
import pytest

from schemas.events import STAGE_ORDER
from services.simulate import SimulationSummary, simulate
from services.simulate.client import (
    MAX_BATCH_BYTES,
    RetryPolicy,
    SegmentClient,
    batches,
    encode,
    parse_retry_after,
)
from services.simulate.errors import IngestRejected, IngestUnavailable
from services.simulate.runner import Pacer, batch_size
from services.simulate.scenario import Scenario
from services.simulate.segment import Message
from tests.unit.simulation_world import START, scenario


@pytest.fixture(scope="module")
def default() -> Scenario:
    return scenario()


# --- batching -----------------------------------------------------------------------------


def test_batches_respect_the_count_and_size_limits(default: Scenario) -> None:
    messages = default.messages()
    sent = list(batches(messages))
    assert [m for batch in sent for m in batch] == messages
    for batch in sent:
        assert len(batch) <= 100
        body = encode({"batch": batch, "sentAt": "2025-06-02T12:00:00.000+00:00"})
        assert len(body) <= MAX_BATCH_BYTES


def test_batches_split_on_bytes_before_count() -> None:
    messages = [{"type": "track", "messageId": str(i), "pad": "x" * 1000} for i in range(50)]
    sent = list(batches(messages, max_bytes=10_000))
    assert len(sent) > 5
    assert all(len(encode({"batch": b, "sentAt": "x" * 30})) <= 10_000 for b in sent)
    assert [m for b in sent for m in b] == messages


def test_an_oversized_message_is_refused() -> None:
    with pytest.raises(ValueError, match="too large"):
        list(batches([{"messageId": "big", "pad": "x" * 40_000}]))


# --- the client ---------------------------------------------------------------------------


class Recorder:
    """A fake ingest: answers from a script, remembers requests, never really waits."""

    def __init__(self, *answers: httpx.Response) -> None:
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []
        self.sleeps: list[float] = []

    def handle(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        return self.answers.pop(0) if self.answers else httpx.Response(200, json={})

    async def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)

    def client(self, retry: RetryPolicy | None = None) -> SegmentClient:
        return SegmentClient(
            ingest_url="http://ingest.test",
            write_key="wk_123",
            retry=retry or RetryPolicy(),
            transport=httpx.MockTransport(self.handle),
            sleep=self.sleep,
            clock=lambda: START,
        )


BATCH: list[Message] = [{"type": "track", "messageId": "m1", "userId": "u", "event": "Email Sent"}]


async def test_client_posts_a_batch_with_basic_auth() -> None:
    ingest = Recorder()
    async with ingest.client() as client:
        await client.send(BATCH)
    (request,) = ingest.requests
    assert request.method == "POST" and request.url.path == "/v1/batch"
    expected = "Basic " + base64.b64encode(b"wk_123:").decode()
    assert request.headers["Authorization"] == expected
    assert json.loads(request.content) == {
        "batch": BATCH,
        "sentAt": "2025-06-02T12:00:00.000+00:00",
    }
    assert (client.stats.batches, client.stats.messages, client.stats.retries) == (1, 1, 0)


async def test_client_retries_a_503_after_the_retry_after_delay() -> None:
    busy = httpx.Response(503, headers={"Retry-After": "2"}, text="broker busy")
    ingest = Recorder(busy, busy)
    async with ingest.client() as client:
        await client.send(BATCH)
    assert len(ingest.requests) == 3
    assert ingest.sleeps == [2.0, 2.0]
    assert client.stats.retries == 2
    assert all(r.content == ingest.requests[0].content for r in ingest.requests)


async def test_client_backs_off_when_no_retry_after_is_given() -> None:
    ingest = Recorder(httpx.Response(503), httpx.Response(503))
    async with ingest.client(RetryPolicy(backoff_s=0.5)) as client:
        await client.send(BATCH)
    assert ingest.sleeps == [0.5, 1.0]


async def test_client_gives_up_after_bounded_retries() -> None:
    ingest = Recorder(*[httpx.Response(503, headers={"Retry-After": "1"})] * 5)
    with pytest.raises(IngestUnavailable, match="after 3 attempts"):
        async with ingest.client(RetryPolicy(attempts=3)) as client:
            await client.send(BATCH)
    assert len(ingest.requests) == 3
    assert ingest.sleeps == [1.0, 1.0]


@pytest.mark.parametrize("status", [400, 401, 500])
async def test_client_raises_with_the_body_on_a_rejection(status: int) -> None:
    ingest = Recorder(httpx.Response(status, text='{"detail":"batch[0].type: invalid"}'))
    with pytest.raises(IngestRejected, match=r"batch\[0\]\.type: invalid") as caught:
        async with ingest.client() as client:
            await client.send(BATCH)
    assert caught.value.status == status
    assert len(ingest.requests) == 1


async def test_client_retries_when_the_ingest_is_unreachable() -> None:
    calls = 0

    def handle(request: httpx.Request) -> httpx.Response:
        nonlocal calls
        calls += 1
        if calls == 1:
            raise httpx.ConnectError("connection refused", request=request)
        return httpx.Response(200, json={})

    sleeps: list[float] = []

    async def sleep(seconds: float) -> None:
        sleeps.append(seconds)

    transport = httpx.MockTransport(handle)
    async with SegmentClient(
        ingest_url="http://ingest.test", write_key="k", transport=transport, sleep=sleep
    ) as client:
        await client.send(BATCH)
    assert (calls, len(sleeps)) == (2, 1)


def test_retry_after_accepts_seconds_and_http_dates() -> None:
    assert parse_retry_after("3", START) == 3.0
    assert parse_retry_after("Mon, 02 Jun 2025 12:00:05 GMT", START) == 5.0
    assert parse_retry_after("Mon, 02 Jun 2025 11:00:00 GMT", START) == 0.0
    assert parse_retry_after("soon", START) is None
    assert parse_retry_after(None, START) is None
    assert RetryPolicy(max_wait_s=10).wait(1, 3600) == 10


# --- the runner ---------------------------------------------------------------------------


async def test_pacer_caps_the_message_rate() -> None:
    now = 100.0
    waits: list[float] = []

    async def sleep(seconds: float) -> None:
        nonlocal now
        waits.append(seconds)
        now += seconds

    pacer = Pacer(10.0, clock=lambda: now, sleep=sleep)
    for _ in range(4):
        await pacer.wait(5)
    assert waits == [0.5, 0.5, 0.5]
    uncapped = Pacer(None, clock=lambda: now, sleep=sleep)
    await uncapped.wait(10_000)
    await uncapped.wait(10_000)
    assert len(waits) == 3
    assert (batch_size(None), batch_size(8.0), batch_size(1000.0)) == (100, 2, 100)


async def test_simulate_posts_everything_in_order_and_summarises() -> None:
    received: list[dict[str, Any]] = []

    def handle(request: httpx.Request) -> httpx.Response:
        received.extend(json.loads(request.content)["batch"])
        return httpx.Response(200, json={"success": True})

    summary = await simulate(
        ingest_url="http://ingest.test",
        write_key="dev-write-key",
        accounts=12,
        seed=3,
        now=START,
        transport=httpx.MockTransport(handle),
    )
    assert received == scenario(seed=3, accounts=12).messages()
    assert isinstance(summary, SimulationSummary)
    assert summary.messages == len(received)
    assert summary.accounts == 12
    assert summary.messages_by_type["group"] == 12
    assert sum(summary.accounts_per_stage().values()) == 12
    text = summary.render()
    assert "Simulated 12 accounts" in text
    for stage in STAGE_ORDER:
        assert f"  {stage.value}" in text


async def test_simulate_refuses_a_naive_now() -> None:
    with pytest.raises(ValueError, match="time zone"):
        await simulate(ingest_url="http://x", write_key="k", now=datetime(2025, 6, 2))  # noqa: DTZ001
