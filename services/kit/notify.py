"""Telling readers that accounts changed: PostgreSQL NOTIFY from the writers, LISTEN in
the readers (the API's in-memory account details).

A writer calls ``notify_accounts_changed`` inside the transaction that changes the rows:
PostgreSQL delivers a notification only when (and if) that transaction commits, so a
reader never hears of a change it cannot yet see. SQLite has no NOTIFY: there the call
does nothing, and readers must not cache.

A reader runs ``AccountChangeListener``: it evicts the named accounts, and whenever it is
not sure to hear every change (not yet connected, connection lost or unresponsive) it
suspends its sink, which then forgets everything and caches nothing until listening again.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Sequence
from typing import Protocol

import asyncpg
from sqlalchemy import text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.kit.stopping import wait_any

CHANNEL = "abm_accounts"
EVERY_ACCOUNT = "*"
"""A payload (or a line of one) meaning: forget every account."""
LISTENER_NAME = "abm-account-listener"
"""The listener connection's application_name (for pg_stat_activity)."""
CONNECT_TIMEOUT_S = 10.0
MAX_PAYLOAD_BYTES = 7_900  # PostgreSQL refuses payloads of 8,000 bytes or more
_SEPARATOR = "\n"  # never inside a domain name

_NOTIFY = text(
    "SELECT pg_notify(:channel, payload) FROM unnest(CAST(:payloads AS text[])) AS payload"
)

log = logging.getLogger(__name__)


def notification_payloads(domains: Iterable[str]) -> list[str]:
    """The domains, deduplicated and sorted, joined into as few payloads as fit the limit.

    A name that could not be told apart on the other side (empty, containing the
    separator) or that alone exceeds the limit turns the lot into "forget everything".
    """
    names = sorted(set(domains))
    if not names:
        return []
    if any(not n or _SEPARATOR in n or len(n.encode()) > MAX_PAYLOAD_BYTES for n in names):
        return [EVERY_ACCOUNT]
    payloads: list[str] = []
    chunk: list[str] = []
    size = 0
    for name in names:
        cost = len(name.encode()) + (1 if chunk else 0)
        if size + cost > MAX_PAYLOAD_BYTES:
            payloads.append(_SEPARATOR.join(chunk))
            chunk, size, cost = [], 0, len(name.encode())
        chunk.append(name)
        size += cost
    payloads.append(_SEPARATOR.join(chunk))
    return payloads


def changed_domains(payload: str) -> list[str] | None:
    """The domains a payload names; None when it says every account changed."""
    names = payload.split(_SEPARATOR)
    return None if EVERY_ACCOUNT in names else names


async def notify_accounts_changed(
    session: AsyncSession | AsyncConnection, domains: Iterable[str | None]
) -> None:
    """Announce, on commit of the session's transaction, that these accounts changed
    (None, an event of no account, is skipped). A no-op but on PostgreSQL."""
    if _dialect(session) != "postgresql":
        return
    payloads = notification_payloads(d for d in domains if d is not None)
    if payloads:
        await session.execute(_NOTIFY, {"channel": CHANNEL, "payloads": payloads})


class ChangeSink(Protocol):
    """What a listener keeps informed (the API's ``DetailCache`` and ``ChangeTail``)."""

    def evict(self, domains: Iterable[str]) -> None: ...

    def clear(self) -> None: ...

    def suspend(self) -> None: ...

    def resume(self) -> None: ...


def asyncpg_dsn(database_url: str) -> str:
    """A SQLAlchemy URL (``postgresql+asyncpg://...``) as asyncpg's own DSN."""
    return make_url(database_url).set(drivername="postgresql").render_as_string(False)


class AccountChangeListener:
    """One LISTEN connection feeding its sinks; reconnects with back-off until stopped."""

    def __init__(
        self,
        dsn: str,
        sinks: Sequence[ChangeSink],
        *,
        check_every_s: float = 1.0,
        min_backoff_s: float = 0.1,
        max_backoff_s: float = 5.0,
    ) -> None:
        self._dsn = dsn
        self._sinks = tuple(sinks)
        self._check_every_s = check_every_s
        self._min_backoff_s = min_backoff_s
        self._max_backoff_s = max_backoff_s
        self._heard = False  # listened since the last failure: back-off starts over

    async def run(self, stop: asyncio.Event) -> None:
        """Listen until ``stop`` is set; the sinks are suspended whenever not listening."""
        backoff = self._min_backoff_s
        while not stop.is_set():
            try:
                await self._listen_once(stop)
            except Exception as error:  # noqa: BLE001 - any failure: suspended, then retry
                log.warning("account change listener lost: %s", str(error) or type(error).__name__)
            finally:
                for sink in self._sinks:
                    sink.suspend()
            if self._heard:
                self._heard, backoff = False, self._min_backoff_s
            if not stop.is_set():
                await wait_any([stop], backoff)
                backoff = min(backoff * 2, self._max_backoff_s)

    async def _listen_once(self, stop: asyncio.Event) -> None:
        connection = await asyncpg.connect(
            self._dsn,
            timeout=CONNECT_TIMEOUT_S,
            server_settings={"application_name": LISTENER_NAME},
        )
        lost = asyncio.Event()
        try:
            connection.add_termination_listener(lambda _c: lost.set())
            await connection.add_listener(CHANNEL, self._on_notification)
            # LISTEN has returned: every commit from now on is heard, so serving may start.
            for sink in self._sinks:
                sink.resume()
            self._heard = True
            while not stop.is_set():
                await wait_any([stop, lost], self._check_every_s)
                if lost.is_set():
                    raise ConnectionError("listener connection closed")
                if not stop.is_set():  # a silent network loses no TCP close: ask
                    await asyncio.wait_for(
                        connection.fetchval("SELECT 1"), timeout=self._check_every_s
                    )
        finally:
            for sink in self._sinks:
                sink.suspend()
            connection.terminate()

    def _on_notification(
        self, _connection: object, _pid: int, _channel: str, payload: object
    ) -> None:
        domains = changed_domains(str(payload))
        if domains is None:
            for sink in self._sinks:
                sink.clear()
        else:
            for sink in self._sinks:
                sink.evict(domains)


def _dialect(session: AsyncSession | AsyncConnection) -> str:
    bind = session.get_bind() if isinstance(session, AsyncSession) else session
    return bind.dialect.name
