"""The broker hangs mid-stream while senders keep posting: no acknowledged event is lost.

How the outage is made: the Tansu process is paused with SIGSTOP and resumed with SIGCONT.
Tansu keeps its topics in memory only, so a killed broker comes back empty, and "every
request answered 200 is on the topic after recovery" could then not be checked for the
requests answered before the kill. A paused broker is the
harder case for ingest anyway: connections stay open and requests are accepted by the
kernel but never answered, as with a hung or partitioned broker, so only ingest's own ack
timeout can turn them into 503s; and on SIGCONT the broker resumes with every record it
acknowledged, which the test then reads back.

Asserted: every event of every request answered 200 is on the topic; every other answer
is a 503 with a positive Retry-After (never a 5xx without it, never a hang, never a 200
for something the broker did not acknowledge); readiness fails during the pause; events
of 503 requests may or may not be on the topic (at-least-once: the client retries them).

The second test kills the broker for real and starts an empty one on the same address:
what it proves is recovery, that ingest answers 503 while no broker exists and that every
200 answered after the restart is on the new broker's topic (the 200s answered before the
kill died with Tansu's memory: the first test is the one that checks those).
"""

from __future__ import annotations

import asyncio
import os
import signal
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from schemas import topics
from schemas.events import decode_event
from services.kit import kafka
from services.kit.broker import EmbeddedBroker, start_broker
from tests.harness import consume_all
from tests.integration.test_ingest_http import KEY, ingest, page  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

SENDERS = 4
BATCH = 20


@dataclass(frozen=True)
class Answer:
    event_ids: tuple[str, ...]
    status: int  # 0: no HTTP answer at all
    retry_after: str | None
    paused: bool  # sent while the broker was paused


class Traffic:
    """Senders post batches until told to stop; every answer is recorded and announced."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.answers: list[Answer] = []
        self.paused = False
        self.stop = asyncio.Event()
        self._changed = asyncio.Condition()

    async def run(self, client: httpx.AsyncClient) -> list[asyncio.Task[None]]:
        return [asyncio.create_task(self.send(client, n)) for n in range(SENDERS)]

    async def finish(self, senders: list[asyncio.Task[None]]) -> None:
        self.stop.set()
        await asyncio.gather(*senders)

    async def send(self, client: httpx.AsyncClient, sender: int) -> None:
        number = 0
        while not self.stop.is_set():
            ids = tuple(f"s{sender}-b{number}-e{i}" for i in range(BATCH))
            number += 1
            paused = self.paused
            batch = [page(messageId=event_id) for event_id in ids]
            try:
                response = await client.post(
                    f"{self.url}/v1/batch", json={"batch": batch}, auth=(KEY, "")
                )
                answer = Answer(ids, response.status_code, response.headers.get("retry-after"),
                                paused)  # fmt: skip
            except httpx.HTTPError as error:
                answer = Answer(ids, 0, repr(error), paused)
            async with self._changed:
                self.answers.append(answer)
                self._changed.notify_all()

    async def until(self, condition: Callable[[list[Answer]], bool]) -> None:
        async with asyncio.timeout(30), self._changed:  # a guard against hanging, not a check
            await self._changed.wait_for(lambda: condition(self.answers))


def count(answers: list[Answer], status: int, paused: bool | None = None) -> int:
    return sum(a.status == status and (paused is None or a.paused == paused) for a in answers)


async def test_requests_answered_200_are_on_the_topic_and_the_others_got_503(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
) -> None:
    traffic = Traffic(ingest)
    pid = broker.process.pid
    async with httpx.AsyncClient(timeout=30) as client:
        senders = await traffic.run(client)
        try:
            await traffic.until(lambda answers: count(answers, 200) >= 8)
            os.kill(pid, signal.SIGSTOP)
            traffic.paused = True
            await traffic.until(lambda answers: count(answers, 503, paused=True) >= SENDERS)
            readiness = await client.get(f"{ingest}/readyz")
            os.kill(pid, signal.SIGCONT)
            traffic.paused = False
            resumed = len(traffic.answers)
            await traffic.until(lambda answers: count(answers[resumed:], 200, False) >= 8)
        finally:
            os.kill(pid, signal.SIGCONT)
            await traffic.finish(senders)

    assert readiness.status_code == 503 and "broker" in readiness.json()["problems"]
    answers = traffic.answers
    assert {a.status for a in answers} == {200, 503}
    assert all(int(a.retry_after or 0) > 0 for a in answers if a.status == 503)
    acknowledged = {event_id for a in answers if a.status == 200 for event_id in a.event_ids}
    sent = {event_id for a in answers for event_id in a.event_ids}
    on_topic = {
        decode_event(record.value).event_id
        for record in await consume_all(broker.bootstrap, topics.EVENTS.name, len(acknowledged))
    }
    assert acknowledged - on_topic == set()  # nothing acknowledged is lost
    assert on_topic <= sent  # at-least-once: some 503 events may be there, nothing else


def restart_with_topics(port: int, logs: Path) -> EmbeddedBroker:
    """An empty broker on the same address, its topics created before any client reaches
    it, as a restarted cluster has them.

    Blocking on purpose: this runs while the test's event loop, which also runs the ingest
    server and its producer, waits, so the producer cannot reach the new broker before its
    topics exist. That matters with Tansu, which acknowledges produce requests for topics
    it does not have and keeps nothing (found by this test: Kafka answers
    UNKNOWN_TOPIC_OR_PARTITION, and the producer retries into a 503).
    """
    broker = start_broker(port=port, log_file=logs / "tansu-2.log")

    async def ready() -> None:
        await kafka.wait_for_broker(broker.bootstrap)
        await kafka.ensure_topics(broker.bootstrap)

    thread = threading.Thread(target=asyncio.run, args=(ready(),))
    thread.start()
    thread.join()
    return broker


async def test_after_a_broker_restart_every_200_is_on_the_new_broker(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
    tmp_path: Path,
) -> None:
    traffic = Traffic(ingest)
    async with httpx.AsyncClient(timeout=30) as client:
        senders = await traffic.run(client)
        try:
            await traffic.until(lambda answers: count(answers, 200) >= 8)
            traffic.paused = True
            # SIGTERM: the process and its in-memory topics are gone. In a thread: the
            # wait must not block the loop that runs the ingest server and the senders.
            await asyncio.to_thread(broker.stop)
            await traffic.until(lambda answers: count(answers, 503, paused=True) >= SENDERS)
            readiness = await client.get(f"{ingest}/readyz")
            restarted = restart_with_topics(broker.port, tmp_path)
            traffic.paused = False
            back = len(traffic.answers)
            await traffic.until(lambda answers: count(answers[back:], 200) >= 8)
            recovered = await client.get(f"{ingest}/readyz")
        finally:
            await traffic.finish(senders)
    try:
        after = traffic.answers[back:]
        acknowledged = {event_id for a in after if a.status == 200 for event_id in a.event_ids}
        records = await consume_all(restarted.bootstrap, topics.EVENTS.name, len(acknowledged))
    finally:
        restarted.stop()

    assert (readiness.status_code, recovered.status_code) == (503, 200)
    assert {a.status for a in traffic.answers} == {200, 503}
    assert all(int(a.retry_after or 0) > 0 for a in traffic.answers if a.status == 503)
    on_new_topic = {decode_event(record.value).event_id for record in records}
    assert acknowledged - on_new_topic == set()


async def test_a_broker_restarted_without_topics_is_not_ready(
    ingest: str,  # noqa: F811
    broker: EmbeddedBroker,
    tmp_path: Path,
) -> None:
    """Tansu acknowledges records for topics it lacks and keeps nothing: until ``abm
    topics`` ran, readiness fails and says why."""
    await asyncio.to_thread(broker.stop)
    empty = start_broker(port=broker.port, log_file=tmp_path / "tansu-empty.log")
    try:
        await kafka.wait_for_broker(empty.bootstrap)
        async with httpx.AsyncClient(timeout=10) as client:
            before = await client.get(f"{ingest}/readyz")
            await kafka.ensure_topics(empty.bootstrap)
            after = await client.get(f"{ingest}/readyz")
    finally:
        empty.stop()
    assert (before.status_code, before.json()["problems"]) == (503, {"broker": "TopicsMissing"})
    assert after.status_code == 200
