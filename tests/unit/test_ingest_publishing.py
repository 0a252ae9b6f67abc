"""Ingest publishing: bounded waiting on a hung broker, and what is counted once acked."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from typing import Any

import pytest
from prometheus_client import REGISTRY

from schemas.events import PageViewed
from services.ingest.collect import Collected
from services.ingest.observe import observe_published
from services.ingest.publishing import Publisher, TopicsMissing
from services.kit.publish import BrokerUnavailable

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


class HungProducer:
    """Accepts records and acknowledges them only when the test says so."""

    def __init__(self, expected: int = 1) -> None:
        self.acks: list[asyncio.Future[None]] = []
        self.expected = expected
        self.all_sent = asyncio.Event()

    async def send(self, topic: str, value: bytes, key: bytes, headers: Any) -> Any:
        ack: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self.acks.append(ack)
        if len(self.acks) >= self.expected:
            self.all_sent.set()
        return ack


def page(event_id: str, is_bot: bool) -> PageViewed:
    return PageViewed(event_id=event_id, occurred_at=NOW, received_at=NOW, source="web",
                      url="https://a.io/", is_bot=is_bot, account="acme.com")  # fmt: skip


async def test_requests_beyond_the_in_flight_bound_are_refused_at_once() -> None:
    producer = HungProducer(expected=2)
    publisher = Publisher(producer, ack_timeout_s=60, max_in_flight=2)  # type: ignore[arg-type]
    waiting = [asyncio.create_task(publisher.publish([page(f"e{i}", False)])) for i in range(2)]
    await producer.all_sent.wait()
    assert publisher.in_flight == 2
    with pytest.raises(BrokerUnavailable):
        await publisher.publish([page("e3", False)])
    assert len(producer.acks) == 2  # the refused request's record never reached the producer
    for ack in producer.acks:
        ack.set_result(None)
    await asyncio.gather(*waiting)
    assert publisher.in_flight == 0


async def test_an_unacknowledged_request_frees_its_slot_after_the_timeout() -> None:
    producer = HungProducer()
    publisher = Publisher(producer, ack_timeout_s=0.05, max_in_flight=1)  # type: ignore[arg-type]
    with pytest.raises(BrokerUnavailable):
        await publisher.publish([page("e1", False)])
    assert publisher.in_flight == 0


async def test_nothing_to_publish_needs_no_broker() -> None:
    publisher = Publisher(HungProducer(), ack_timeout_s=0.05)  # type: ignore[arg-type]
    await publisher.publish([], [])


def test_acknowledged_bot_events_are_counted_per_route() -> None:
    def bots(route: str) -> float:
        labels = {"route": route}
        return REGISTRY.get_sample_value("abm_ingest_bot_events_total", labels) or 0.0

    before_beacon, before_batch = bots("/v1/t"), bots("/v1/batch")
    collected = Collected(events=[page("b1", True), page("h1", False), page("b2", True)])
    observe_published(collected, "req-1", "/v1/t")
    assert bots("/v1/t") - before_beacon == 2
    assert bots("/v1/batch") == before_batch


class Metadata:
    def __init__(self, names: set[str]) -> None:
        self.names = names

    def topics(self) -> set[str]:
        return self.names


class AnsweringProducer:
    """A producer whose broker answers metadata requests with the given topics."""

    def __init__(self, names: set[str]) -> None:
        self.client = self
        self.names = names

    async def fetch_all_metadata(self) -> Metadata:
        return Metadata(self.names)


async def test_readiness_needs_the_topics_ingest_produces_to() -> None:
    ready = Publisher(AnsweringProducer({"abm.events.v1", "abm.deadletter.v1", "x"}), 1)  # type: ignore[arg-type]
    await ready.ping()
    empty = Publisher(AnsweringProducer({"abm.changes.v1"}), 1)  # type: ignore[arg-type]
    with pytest.raises(TopicsMissing, match=r"abm.deadletter.v1, abm.events.v1"):
        await empty.ping()
