"""Write-key authentication with a short cache, so the hot path rarely reads the database."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.cache import TtlCache
from services.kit.credentials import IpPolicy, write_key_access

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class WriteKeyAccess:
    """Who sends with a key, and what ingest may keep of their visitors' IP addresses."""

    source: str
    ip_policy: IpPolicy = "truncate"


class WriteKeysUnavailable(Exception):
    """The database did not tell in time whether a key is valid (down, hung, failing)."""


class WriteKeys:
    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], ttl_s: float, timeout_s: float = 2.0
    ) -> None:
        self._sessions = sessions
        self._timeout_s = timeout_s
        # Lookups given up on, referenced until their cleanup ends (tasks are weakly held).
        self._abandoned: set[asyncio.Future[WriteKeyAccess | None]] = set()
        # A failed lookup raises out of the cache: only answers are cached, never failures.
        self._cache: TtlCache[WriteKeyAccess | None] = TtlCache(self._lookup, ttl_s)

    async def source(self, key: str) -> str | None:
        """The source a key belongs to; unknown and revoked keys give None."""
        access = await self.access(key)
        return None if access is None else access.source

    async def access(self, key: str) -> WriteKeyAccess | None:
        """The source and IP policy of a key; unknown and revoked keys give None.

        Raises ``WriteKeysUnavailable`` when the lookup fails or takes longer than the
        timeout: the caller answers 503 (or, for a pixel, counts the hit).
        """
        return await self._cache.get(key)

    async def _lookup(self, key: str) -> WriteKeyAccess | None:
        # A task, so that the request waits for the timeout only: once cancelled, closing
        # a hung connection takes SQLAlchemy seconds more, which the lookup finishes alone.
        lookup = asyncio.ensure_future(self._read(key))
        try:
            done, _ = await asyncio.wait({lookup}, timeout=self._timeout_s)
        except asyncio.CancelledError:  # the request itself went away
            lookup.cancel()
            raise
        if not done:
            lookup.cancel()
            self._abandoned.add(lookup)
            lookup.add_done_callback(self._forget)
            log.warning("write-key lookup took longer than %ss", self._timeout_s)
            raise WriteKeysUnavailable("timeout")
        try:
            return lookup.result()
        # Whatever the database fails with (refused, SQLAlchemy errors, asyncpg errors raised
        # at connect that SQLAlchemy does not wrap), the key cannot be checked now.
        except Exception as error:
            log.warning("write-key lookup failed: %s", type(error).__name__ or "error")
            raise WriteKeysUnavailable(type(error).__name__) from error

    async def _read(self, key: str) -> WriteKeyAccess | None:
        async with self._sessions() as session:
            found = await write_key_access(session, key)
        return None if found is None else WriteKeyAccess(*found)

    def _forget(self, lookup: asyncio.Future[WriteKeyAccess | None]) -> None:
        self._abandoned.discard(lookup)
        if not lookup.cancelled():
            lookup.exception()  # retrieved: an abandoned lookup's failure is not news


def key_from_basic_auth(header: str | None) -> str | None:
    """Segment sends ``Authorization: Basic base64("<write key>:")``."""
    if not header or not header.lower().startswith("basic "):
        return None
    try:
        decoded = base64.b64decode(header[6:].strip(), validate=True).decode()
    except (binascii.Error, UnicodeDecodeError):
        return None
    key, _, _ = decoded.partition(":")
    return key or None
