"""Write-key authentication with a short cache, so the hot path rarely reads the database."""

from __future__ import annotations

import base64
import binascii

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.cache import TtlCache
from services.kit.credentials import source_for_write_key


class WriteKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_s: float) -> None:
        self._sessions = sessions
        self._cache: TtlCache[str | None] = TtlCache(self._lookup, ttl_s)

    async def source(self, key: str) -> str | None:
        """The source a key belongs to; unknown and revoked keys give None."""
        return await self._cache.get(key)

    async def _lookup(self, key: str) -> str | None:
        async with self._sessions() as session:
            return await source_for_write_key(session, key)


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
