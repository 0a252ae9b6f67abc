"""Write-key authentication with a short cache, so the hot path rarely reads the database."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.cache import TtlCache
from services.kit.credentials import IpPolicy, write_key_access


@dataclass(frozen=True, slots=True)
class WriteKeyAccess:
    """Who sends with a key, and what ingest may keep of their visitors' IP addresses."""

    source: str
    ip_policy: IpPolicy = "truncate"


class WriteKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_s: float) -> None:
        self._sessions = sessions
        self._cache: TtlCache[WriteKeyAccess | None] = TtlCache(self._lookup, ttl_s)

    async def source(self, key: str) -> str | None:
        """The source a key belongs to; unknown and revoked keys give None."""
        access = await self._cache.get(key)
        return None if access is None else access.source

    async def access(self, key: str) -> WriteKeyAccess | None:
        """The source and IP policy of a key; unknown and revoked keys give None."""
        return await self._cache.get(key)

    async def _lookup(self, key: str) -> WriteKeyAccess | None:
        async with self._sessions() as session:
            found = await write_key_access(session, key)
        return None if found is None else WriteKeyAccess(*found)


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
