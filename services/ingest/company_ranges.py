"""The company IP ranges ingest looks up: loaded at startup, refreshed in the background.

Change detection is one cheap query (row count and newest ``updated_at``); only a change
reloads the rows and builds a new lookup table, off the event loop, then swaps it in with
one assignment, so requests always see a complete table, old or new.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.ingest.ip_ranges import EMPTY_TABLE, IpRangeTable, RangeOwner
from services.kit.ip_ranges import load_ranges, range_fingerprint

log = logging.getLogger(__name__)


class CompanyRanges:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], refresh_s: float) -> None:
        self._sessions = sessions
        self._refresh_s = refresh_s
        self._fingerprint: tuple[int, datetime | None] | None = None
        self.table: IpRangeTable = EMPTY_TABLE

    def lookup(self, address: str) -> RangeOwner | None:
        """The owner of the most specific company range holding ``address``."""
        return self.table.lookup(address)

    async def refresh(self) -> bool:
        """Reload when the stored ranges changed; True when a new table was swapped in."""
        async with self._sessions() as session:
            fingerprint = await range_fingerprint(session)
            if fingerprint == self._fingerprint:
                return False
            rows = await load_ranges(session)
        self.table = await asyncio.to_thread(IpRangeTable, rows)
        self._fingerprint = fingerprint
        log.info(
            "company IP ranges loaded",
            extra={"ranges": self.table.range_count, "intervals": self.table.interval_count},
        )
        return True

    async def refresh_quietly(self) -> None:
        """``refresh``, a database error logged rather than raised (the old table stays)."""
        try:
            await self.refresh()
        except Exception as error:  # noqa: BLE001 - any failure: keep serving the old table
            log.warning("company IP ranges not refreshed: %s", type(error).__name__)

    async def run(self) -> None:
        """Refresh every ``refresh_s`` until cancelled."""
        while True:
            await asyncio.sleep(self._refresh_s)
            await self.refresh_quietly()

    def start(self) -> asyncio.Task[None]:
        return asyncio.create_task(self.run(), name="company-ip-ranges")


async def stop(task: asyncio.Task[None]) -> None:
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
