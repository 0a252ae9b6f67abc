"""Write-key authentication with a short cache, so the hot path rarely reads the database."""

from __future__ import annotations

import base64
import binascii
import time

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.kit.credentials import source_for_write_key


class WriteKeys:
    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_s: float) -> None:
        self._sessions = sessions
        self._ttl = ttl_s
        self._cache: dict[str, tuple[float, str | None]] = {}

    async def source(self, key: str) -> str | None:
        """The source a key belongs to; unknown and revoked keys give None."""
        now = time.monotonic()
        cached = self._cache.get(key)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        async with self._sessions() as session:
            source = await source_for_write_key(session, key)
        if len(self._cache) > 10_000:
            self._cache.clear()  # bounded: hostile clients may send endless random keys
        self._cache[key] = (now, source)
        return source


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
