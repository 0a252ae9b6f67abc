"""The change log's newest changes, read once for every stream (``GET /v1/stream``).

Each stream used to read the log itself every ``api_stream_poll_s``: N streams made N
queries per period, idle or not, and a change waited for the next period. One task reads
the log instead, after the last position it holds: as soon as a writer announces a commit
(the NOTIFY the account listener hears) and every period otherwise. It keeps the last
``keep`` changes; a stream at or after the oldest of them is served from memory and woken
as soon as more arrive. A stream further behind (resuming from an old Last-Event-ID), or
any stream while the tail is not reading (the database out of reach), reads the database
itself until it catches up.

The tail reads with the log's commit-safe rule (``changes_after``): a change it has not
read yet can only come after every position it holds, so what it holds after a position is
everything there is after it. The rule holds a committed change back while an older
transaction still runs; nothing announces when that one ends, so while a change is held
back the tail reads again every ``HELD_BACK_RETRY_S``.
"""

from __future__ import annotations

import asyncio
import bisect
import logging
from collections.abc import Iterable
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit import metrics
from services.kit.changes import Position, changes_after, held_back_after, newest_position
from services.kit.stopping import wait_any

Change = tuple[Position, dict[str, Any]]
PAGE = 500
MAX_BACKOFF_S = 5.0
# How soon to read again while a committed change waits for an older transaction.
HELD_BACK_RETRY_S = 0.02

log = logging.getLogger(__name__)


class ChangeTail:
    """The last ``keep`` changes of the log, read by ``run`` (see the module docstring)."""

    def __init__(self, readers: async_sessionmaker[AsyncSession], poll_s: float, keep: int) -> None:
        self._readers = readers
        self._poll_s = poll_s
        self._keep = keep
        self._recent: list[Change] = []  # in log order
        self._floor: Position | None = None  # the tail holds every change after it
        self._live = False
        self._held_back = False  # a committed change waits for an older transaction
        self._announced = asyncio.Event()
        self._arrived = asyncio.Event()

    def announce(self) -> None:
        """A writer committed: read the log now rather than at the end of the period."""
        self._announced.set()

    # What the account listener tells it (``notify.ChangeSink``): any commit it hears
    # announces one. While it does not listen, the period alone triggers reads.
    def evict(self, _domains: Iterable[str]) -> None:
        self.announce()

    def clear(self) -> None:
        self.announce()

    def suspend(self) -> None:
        pass

    def resume(self) -> None:
        pass

    def ticket(self) -> asyncio.Event:
        """An event set when changes arrive. Take it before calling ``after``: changes that
        arrive in between then still set it."""
        return self._arrived

    def after(self, position: Position) -> list[Change] | None:
        """The changes after ``position``; None when the tail cannot tell (not reading, or
        ``position`` before what it holds): the caller reads the database."""
        if not self._live or self._floor is None or position < self._floor:
            return None
        return self._recent[bisect.bisect_right(self._recent, position, key=_position) :]

    async def run(self, stop: asyncio.Event) -> None:
        """Read the log until ``stop``: at once when announced, else every period."""
        backoff = self._poll_s
        while not stop.is_set():
            self._announced.clear()  # before reading: one announced meanwhile reads again
            try:
                await self._read()
            except Exception as error:  # noqa: BLE001 - any failure: streams read the database
                self._live = False
                log.warning("change tail: %s", str(error) or type(error).__name__)
                await wait_any([stop], backoff)
                backoff = min(backoff * 2, MAX_BACKOFF_S)
                continue
            self._live, backoff = True, self._poll_s
            period = HELD_BACK_RETRY_S if self._held_back else self._poll_s
            await wait_any([stop, self._announced], period)

    async def _read(self) -> None:
        async with self._readers() as session:
            metrics.API_CHANGE_LOG_READS.labels("tail").inc()
            if self._floor is None:
                self._floor = await newest_position(session)  # streams start from now
                return
            head = self._recent[-1][0] if self._recent else self._floor
            arrived: list[Change] = []
            while True:
                page = await changes_after(session, head, PAGE)
                arrived += page
                if len(page) < PAGE:
                    break
                head = page[-1][0]
            self._held_back = await held_back_after(session, arrived[-1][0] if arrived else head)
        if arrived:
            self._hold(arrived)
            self._arrived.set()
            self._arrived = asyncio.Event()

    def _hold(self, arrived: Iterable[Change]) -> None:
        self._recent += arrived
        excess = len(self._recent) - self._keep
        if excess > 0:
            self._floor = self._recent[excess - 1][0]
            del self._recent[:excess]


def _position(change: Change) -> Position:
    return change[0]
