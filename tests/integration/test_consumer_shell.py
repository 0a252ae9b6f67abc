"""The consumer shell on the real broker and PostgreSQL: poison messages, duplicates,
and two members sharing the partitions through rebalances."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from aiokafka import AIOKafkaProducer, TopicPartition
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas import topics
from schemas.events import AccountUpserted, PageViewed, encode_event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.service import CONSUMED, FunnelHandler
from services.funnel.state import AccountState
from services.kit import db, metrics, offsets
from services.kit.broker import EmbeddedBroker, free_port
from services.kit.consumer import ConsumerShell, InboundRecord, ShellOptions
from services.kit.offsets import OutboundRecord
from services.kit.settings import CommonSettings
from services.kit.tables import accounts, processed_events
from tests.harness import (
    Stack,
    consume_all,
    funnel_member,
    produce,
    stored_progress,
    wait_for_progress,
)
from tests.streams import generate

pytestmark = pytest.mark.integration

T0 = datetime(2026, 3, 1, tzinfo=UTC)


async def test_poison_is_dead_lettered_and_duplicates_apply_once(
    pg_url: str, broker: EmbeddedBroker
) -> None:
    upsert = AccountUpserted(event_id="e1", occurred_at=T0, received_at=T0, account="acme.com",
                             source="crm", target=True)  # fmt: skip
    visit = PageViewed(event_id="e2", occurred_at=T0, received_at=T0, account="acme.com",
                       source="web", url="https://v.io/")  # fmt: skip
    producer = AIOKafkaProducer(bootstrap_servers=broker.bootstrap)
    await producer.start()
    for value in (
        encode_event(upsert),
        b"{not an event",
        encode_event(upsert),
        encode_event(visit),
    ):
        await producer.send_and_wait(topics.EVENTS.name, value, key=b"acme.com")
    await producer.stop()

    engine = db.create_engine(url=pg_url)
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, database_url=pg_url,
                              kafka_session_timeout_ms=2000)  # fmt: skip
    shell = ConsumerShell(settings=settings, group_id=topics.FUNNEL_GROUP, topic_names=CONSUMED,
                          handler=FunnelHandler(FunnelConfig()),
                          sessionmaker=db.create_sessionmaker(engine))  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(shell.run(stop))
    await wait_for_progress(pg_url, beyond=3)
    stop.set()
    await running

    async with engine.connect() as connection:
        applied = await connection.scalar(select(func.count()).select_from(processed_events))
        stage = await connection.scalar(select(accounts.c.stage))
    await engine.dispose()
    assert (applied, stage) == (2, "engaged")
    [dead] = await consume_all(broker.bootstrap, topics.DEAD_LETTER.name, 1)
    headers = dict(dead.headers)
    assert dead.value == b"{not an event"
    assert headers[topics.HEADER_REASON]
    assert headers[topics.HEADER_ORIGINAL_TOPIC] == topics.EVENTS.name.encode()
    assert headers[topics.HEADER_ORIGINAL_OFFSET] == b"1"


async def test_two_members_split_the_partitions_and_agree_with_one_run(
    services: Stack, pg_url: str, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=200, events_per_account=15, seed=3)
    services.env["ABM_FUNNEL_MAX_BATCH"] = "50"
    first = services.start("funnel")
    await produce(broker.bootstrap, events[: len(events) // 2])
    services.env["ABM_FUNNEL_METRICS_PORT"] = str(free_port())  # the second member's own port
    second = services.start("funnel")  # joins mid-stream: partitions move under load
    await produce(broker.bootstrap, events[len(events) // 2 :])
    for _ in range(600):
        if await stored_progress(pg_url) >= len(events):
            break
        await asyncio.sleep(0.1)
    assert first.process.poll() is None and second.process.poll() is None
    assert "assigned" in second.log.read_text(), "the second member never got partitions"
    unique = list({e.event_id: e for e in events}.values())
    expected, _ = apply_events({}, unique, FunnelConfig())
    engine = db.create_engine(url=pg_url)
    async with engine.connect() as connection:
        rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
    await engine.dispose()
    assert {d: AccountState.model_validate(s) for d, s in rows} == expected


class _RebalancedMidBatch:
    """Wraps the funnel handler: while the first batch's transaction is open, the group
    takes every partition of the batch away, and hands them back once it committed."""

    def __init__(self, inner: FunnelHandler, database_url: str) -> None:
        self.inner = inner
        self.database_url = database_url
        self.shell: ConsumerShell | None = None
        self.given_back: asyncio.Task[None] | None = None

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]:
        if self.given_back is None and self.shell is not None:
            partitions = {TopicPartition(r.topic, r.partition) for r in records}
            self.shell.on_revoked(partitions)
            self.given_back = asyncio.create_task(self._give_back(self.shell, partitions))
        return await self.inner.apply(session, records)

    async def _give_back(self, shell: ConsumerShell, partitions: set[TopicPartition]) -> None:
        await wait_for_progress(self.database_url, beyond=0)
        await shell.on_assigned(partitions)


async def test_a_rebalance_during_a_batch_neither_crashes_nor_loses_the_batch(
    pg_url: str, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=40, events_per_account=10, seed=8)
    await produce(broker.bootstrap, events)
    handler = _RebalancedMidBatch(FunnelHandler(FunnelConfig()), pg_url)
    shell, engine = funnel_member(pg_url, broker.bootstrap, handler)
    handler.shell = shell
    stop = asyncio.Event()
    running = asyncio.create_task(shell.run(stop))
    for _ in range(600):
        # Done once everything is stored and the partitions were handed back: the first
        # batch may hold every record, so progress alone can complete before the hand-back.
        given_back = handler.given_back is not None and handler.given_back.done()
        if running.done() or (given_back and await stored_progress(pg_url) >= len(events)):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await running  # raises if the shell crashed

    assert handler.given_back is not None and handler.given_back.done()
    handler.given_back.result()  # the hand-back itself did not fail
    unique = list({e.event_id: e for e in events}.values())
    expected, _ = apply_events({}, unique, FunnelConfig())
    async with engine.connect() as connection:
        rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
    await engine.dispose()
    assert {d: AccountState.model_validate(s) for d, s in rows} == expected


class _Recording:
    """A handler that only records what it is given."""

    def __init__(self) -> None:
        self.seen: list[str] = []

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]:
        self.seen += [r.event.event_id for r in records]
        return []


async def test_events_of_no_interest_are_passed_over_unclaimed_but_consumed(
    pg_url: str, broker: EmbeddedBroker
) -> None:
    events = generate(accounts=20, events_per_account=10, seed=6)
    await produce(broker.bootstrap, events)
    wanted = {e.event_id for e in events if e.type != "page_viewed"}
    assert 0 < len(wanted) < len({e.event_id for e in events})
    engine = db.create_engine(url=pg_url)
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, database_url=pg_url)
    handler = _Recording()
    options = ShellOptions(relevant=lambda event: event.type != "page_viewed")
    shell = ConsumerShell(settings=settings, group_id=topics.FUNNEL_GROUP, topic_names=CONSUMED,
                          handler=handler, sessionmaker=db.create_sessionmaker(engine),
                          options=options)  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(shell.run(stop))
    await wait_for_progress(pg_url, beyond=len(events) - 1)  # every offset, page views too
    stop.set()
    await running

    async with engine.connect() as connection:
        claimed = set((await connection.execute(select(processed_events.c.event_id))).scalars())
    await engine.dispose()
    assert set(handler.seen) == wanted == claimed


async def test_a_log_that_restarted_behind_the_stored_offset_is_read_again(
    any_db_url: str, broker: EmbeddedBroker, caplog: pytest.LogCaptureFixture
) -> None:
    """The database outlived its broker (`make run` again: the embedded broker keeps
    nothing): the partition's stored offset is 500, its new log holds 4 records. Waiting at
    500 would skip them silently; the shell reads the log again from its start."""
    key = ("abm.events.v1", topics.partition_of("acme.com", topics.EVENTS.partitions))
    engine = db.create_engine(url=any_db_url)
    sessions = db.create_sessionmaker(engine)
    async with sessions() as session, session.begin():
        await offsets.advance_offset(session, topics.FUNNEL_GROUP, key, None, 500)
    visits = [
        PageViewed(
            event_id=f"v{i}",
            occurred_at=T0,
            received_at=T0,
            account="acme.com",
            source="web",
            url=f"https://v.io/{i}",
        )
        for i in range(3)
    ]
    upsert = AccountUpserted(event_id="u1", occurred_at=T0, received_at=T0, account="acme.com",
                             source="crm", target=True)  # fmt: skip
    await produce(broker.bootstrap, [upsert, *visits])
    resets = metrics.CONSUMER_LOG_RESETS.labels(topics.FUNNEL_GROUP)
    before = resets._value.get()
    settings = CommonSettings(kafka_bootstrap=broker.bootstrap, database_url=any_db_url,
                              kafka_session_timeout_ms=2000)  # fmt: skip
    shell = ConsumerShell(settings=settings, group_id=topics.FUNNEL_GROUP, topic_names=CONSUMED,
                          handler=FunnelHandler(FunnelConfig()), sessionmaker=sessions)  # fmt: skip
    stop = asyncio.Event()
    running = asyncio.create_task(shell.run(stop))

    async def stored() -> int | None:
        async with sessions() as session:
            return (await offsets.load_offsets(session, topics.FUNNEL_GROUP, [key])).get(key)

    try:
        for _ in range(400):
            if await stored() == 4:
                break
            await asyncio.sleep(0.05)
    finally:
        stop.set()
        await running
    try:
        assert await stored() == 4
        async with engine.connect() as connection:
            applied = await connection.scalar(select(func.count()).select_from(processed_events))
            stage = await connection.scalar(select(accounts.c.stage))
    finally:
        await engine.dispose()
    assert (applied, stage) == (4, "engaged")
    assert resets._value.get() == before + 1
    assert "ends at offset 4, before the stored offset 500" in caplog.text
