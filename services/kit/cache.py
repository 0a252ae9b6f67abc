"""A small bounded time-to-live cache for credential lookups on hot paths."""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

Value = TypeVar("Value")


class TtlCache(Generic[Value]):
    """Caches ``load(key)`` results, misses included, for ``ttl_s`` seconds.

    Bounded: hostile clients may send endless random keys, so it empties when full.
    Revocation therefore takes effect within ``ttl_s``.
    """

    def __init__(self, load: Callable[[str], Awaitable[Value]], ttl_s: float, size: int = 10_000):
        self._load = load
        self._ttl = ttl_s
        self._size = size
        self._entries: dict[str, tuple[float, Value]] = {}

    async def get(self, key: str) -> Value:
        now = time.monotonic()
        cached = self._entries.get(key)
        if cached and now - cached[0] < self._ttl:
            return cached[1]
        value = await self._load(key)
        if len(self._entries) >= self._size:
            self._entries.clear()
        self._entries[key] = (now, value)
        return value
