"""What a consumer's service-specific part promises the shell (``consumer.py``): a
``BatchHandler`` applies a batch in the shell's transaction; a ``TwoPhaseHandler`` can
also compute a batch while the batch ahead of it is still being written."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.inbound import InboundRecord
from services.kit.offsets import OutboundRecord


class BatchHandler(Protocol):
    """Service-specific part: state in, pure processing, state out. Never commits."""

    async def apply(
        self, session: AsyncSession, records: Sequence[InboundRecord]
    ) -> list[OutboundRecord]: ...


class PreparedBatch(Protocol):
    """A batch's effects, computed and not yet written."""

    async def write(self, session: AsyncSession) -> list[OutboundRecord]: ...


@dataclass(frozen=True, slots=True)
class Ahead:
    """The batch still being written while the next one is prepared: the state the next
    one starts from, committed or not yet known to be."""

    batch: PreparedBatch
    _commit: asyncio.Future[None]

    async def committed(self) -> None:
        """Wait until it committed (its error is raised here if it failed): for reads
        that must see its writes in the database."""
        await asyncio.shield(self._commit)


@runtime_checkable
class TwoPhaseHandler(BatchHandler, Protocol):
    """A handler whose computation can start while the batch ahead is being written."""

    async def prepare(
        self, session: AsyncSession, records: Sequence[InboundRecord], ahead: Ahead | None
    ) -> PreparedBatch:
        """Load what ``records`` need and compute their effects, without writing. With
        ``ahead``, start from the state that batch writes, not from the database's
        (which is written before this batch's ``write`` is called, or never: then this
        batch is rolled back unwritten)."""
        ...


@dataclass(frozen=True, slots=True)
class Deferred:
    """A plain ``BatchHandler``'s batch: all of its work happens at write time, once the
    batch ahead committed."""

    handler: BatchHandler
    records: Sequence[InboundRecord]

    async def write(self, session: AsyncSession) -> list[OutboundRecord]:
        return await self.handler.apply(session, self.records)
