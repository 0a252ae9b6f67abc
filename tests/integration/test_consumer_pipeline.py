"""The pipelined consumer shell on the real broker and PostgreSQL: a batch prepared while
the one ahead of it is being written starts from that batch's states, and is rolled back
unwritten when that batch fails."""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Sequence

import pytest
from sqlalchemy import func, select
from sqlalchemy.exc import OperationalError
from sqlalchemy.ext.asyncio import AsyncSession

from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.service import FunnelBatch, FunnelHandler
from services.funnel.state import AccountState
from services.kit.batches import Ahead
from services.kit.broker import EmbeddedBroker
from services.kit.consumer import InboundRecord, ShellOptions
from services.kit.offsets import OutboundRecord
from services.kit.tables import accounts, processed_events
from tests.harness import funnel_member, produce, stored_progress
from tests.streams import generate

pytestmark = pytest.mark.integration


@dataclasses.dataclass(frozen=True, slots=True)
class _FailingBatch(FunnelBatch):
    """A funnel batch whose write waits until the next batch was prepared on top of it,
    then fails as a lost database connection does."""

    next_prepared: asyncio.Event | None = None

    async def write(self, session: AsyncSession) -> list[OutboundRecord]:
        assert self.next_prepared is not None
        await asyncio.wait_for(self.next_prepared.wait(), timeout=10)
        raise OperationalError("INSERT ...", {}, ConnectionResetError("injected"))


class _Watching:
    """The funnel handler, counting the batches prepared behind one in flight whose
    accounts that batch was writing; optionally making the first such batch ahead fail."""

    def __init__(self, inner: FunnelHandler, fail_once: bool) -> None:
        self.inner = inner
        self.fail_once = fail_once
        self.next_prepared = asyncio.Event()
        self.on_top_of_shared_accounts = 0

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]:
        return await self.inner.apply(session, records)

    async def prepare(
        self, session: AsyncSession, records: Sequence[InboundRecord], ahead: Ahead | None
    ) -> FunnelBatch:
        batch = await self.inner.prepare(session, records, ahead)
        if isinstance(ahead, Ahead) and isinstance(ahead.batch, FunnelBatch):
            mine = {r.event.account for r in records}
            if mine & ahead.batch.changed.keys():
                self.on_top_of_shared_accounts += 1
                self.next_prepared.set()
        if self.fail_once:
            self.fail_once = False
            fields = {f.name: getattr(batch, f.name) for f in dataclasses.fields(batch)}
            return _FailingBatch(**fields, next_prepared=self.next_prepared)
        return batch


async def _run(pg_url: str, broker: EmbeddedBroker, fail_once: bool) -> None:
    events = generate(accounts=12, events_per_account=20, seed=21)
    await produce(broker.bootstrap, events)
    handler = _Watching(FunnelHandler(FunnelConfig()), fail_once)
    options = ShellOptions(max_batch=15, linger_s=0.2)
    shell, engine = funnel_member(pg_url, broker.bootstrap, handler, options)
    stop = asyncio.Event()
    running = asyncio.create_task(shell.run(stop))
    for _ in range(600):
        if running.done() or await stored_progress(pg_url) >= len(events):
            break
        await asyncio.sleep(0.1)
    stop.set()
    await running  # raises if the shell crashed

    unique = list({e.event_id: e for e in events}.values())
    expected, _ = apply_events({}, unique, FunnelConfig())
    async with engine.connect() as connection:
        rows = (await connection.execute(select(accounts.c.domain, accounts.c.state))).all()
        claimed = await connection.scalar(select(func.count()).select_from(processed_events))
    await engine.dispose()
    # Batches were prepared from states still being written, as the test means to check.
    assert handler.on_top_of_shared_accounts > 0
    assert {d: AccountState.model_validate(s) for d, s in rows} == expected
    assert claimed == len(unique)


async def test_batches_prepared_behind_one_in_flight_agree_with_the_pure_core(
    pg_url: str, broker: EmbeddedBroker
) -> None:
    """Each batch starts from the states the batch ahead is writing, not the database's
    older ones: the result is the pure core's over the whole stream."""
    await _run(pg_url, broker, fail_once=False)


async def test_a_batch_prepared_on_one_that_then_fails_is_rolled_back_unwritten(
    pg_url: str, broker: EmbeddedBroker
) -> None:
    """The batch ahead fails after the next was computed from its states: the next is
    dropped with it and both are read again, so no event counts twice or not at all."""
    await _run(pg_url, broker, fail_once=True)
