"""SIGTERM to the funnel consumer mid-stream: it finishes its batch, commits, leaves the
group and exits 0 within a bounded time; a restarted consumer then finishes the stream
with nothing lost and nothing counted twice."""

from __future__ import annotations

import asyncio
import contextlib
import time

import pytest
from aiokafka.errors import KafkaError
from sqlalchemy import func, select

from schemas import topics
from schemas.topics import FUNNEL_GROUP, INTENT_GROUP
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.state import AccountState
from services.kit import db, offsets
from services.kit.broker import EmbeddedBroker
from services.kit.kafka import create_producer
from services.kit.offsets import OutboundRecord
from services.kit.relay import OutboxRelay
from services.kit.settings import CommonSettings
from services.kit.tables import accounts, processed_events
from tests.harness import Stack, produce, stored_progress, wait_for_progress
from tests.streams import generate

pytestmark = pytest.mark.integration

SHUTDOWN_BUDGET_S = 15.0


async def test_sigterm_mid_stream_exits_zero_and_loses_nothing(
    services: Stack, pg_url: str, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=150, events_per_account=30, seed=23)
    await produce(broker.bootstrap, events)
    services.env["ABM_FUNNEL_MAX_BATCH"] = "40"  # small batches: the signal lands mid-stream
    funnel = services.start("funnel")
    await wait_for_progress(pg_url, 0)

    started = time.monotonic()
    code = funnel.terminate(timeout=SHUTDOWN_BUDGET_S)
    elapsed = time.monotonic() - started
    assert code == 0, funnel.log.read_text()[-2000:]
    assert elapsed < SHUTDOWN_BUDGET_S
    assert "funnel stopped" in funnel.log.read_text()
    stopped_at = await stored_progress(pg_url)
    assert 0 < stopped_at < len(events), "the signal should land mid-stream"

    services.start("funnel")
    progress = stopped_at
    while (progress := await wait_for_progress(pg_url, progress)) < len(events):
        pass

    unique = list({e.event_id: e for e in events}.values())
    expected, _ = apply_events({}, unique, FunnelConfig())
    engine = db.create_engine(url=pg_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
        applied = await connection.scalar(select(func.count()).select_from(processed_events))
    await engine.dispose()
    assert applied == len(unique)
    assert {d: AccountState.model_validate(s) for d, s in rows} == expected


@pytest.mark.parametrize("service", ["funnel", "intent"])
async def test_sigterm_with_the_broker_gone_still_exits_in_time(
    services: Stack, pg_url: str, broker: EmbeddedBroker, service: str
) -> None:
    """With no broker to answer, aiokafka's group leave retries forever; the shell stops
    waiting for it (offsets and unrelayed records are in the database: nothing is lost)."""
    await produce(broker.bootstrap, generate(accounts=20, events_per_account=5, seed=5))
    consumer = services.start(service)
    group = {"funnel": FUNNEL_GROUP, "intent": INTENT_GROUP}[service]
    await wait_for_progress(pg_url, 0, group=group)
    broker.stop()
    await asyncio.sleep(1)  # the clients notice: their connections are refused

    started = time.monotonic()
    code = consumer.terminate(timeout=SHUTDOWN_BUDGET_S)
    elapsed = time.monotonic() - started
    log = consumer.log.read_text()
    assert code == 0 and elapsed < SHUTDOWN_BUDGET_S, (code, elapsed, log[-2000:])
    assert f"{service} stopped" in log
    # Which wait the shell cuts short depends on the race with aiokafka's heartbeat: once
    # its session expired it marks the coordinator dead and leaves no group at all. The
    # budget above is the contract; the unit tests of ``stop_client`` and ``unless_stopped``
    # pin each cut on its own.


async def test_a_relay_to_a_broker_gone_gives_up_in_time_and_keeps_its_rows(
    pg_url: str, broker: EmbeddedBroker
) -> None:
    """The outbox relay waits a bounded time for acknowledgements (aiokafka alone would wait
    out its 40 s request timeout, and SIGTERM with it); the rows stay queued, to relay
    once the broker is back."""
    source = (topics.EVENTS.name, 0)
    record = OutboundRecord(topic=topics.CHANGES.name, key=b"a.com", value=b"{}", headers=())
    engine = db.create_engine(url=pg_url)
    sessions = db.create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await offsets.enqueue_all(session, "relay-test", {source: [record] * 3})
    producer = create_producer(CommonSettings(kafka_bootstrap=broker.bootstrap))
    await producer.start()
    broker.stop()
    await asyncio.sleep(0.5)
    relay = OutboxRelay(sessions, "relay-test", batch=100, send_timeout_s=1.0)
    started = time.monotonic()
    try:
        with pytest.raises(TimeoutError):
            await relay.relay(producer, [source])
        elapsed = time.monotonic() - started
        async with sessions() as session:
            still_queued = await offsets.pending(session, "relay-test", [source], 100)
    finally:
        with contextlib.suppress(TimeoutError, KafkaError):
            await asyncio.wait_for(producer.stop(), 2)
        await engine.dispose()
    assert elapsed < 2.5
    assert len(still_queued) == 3
