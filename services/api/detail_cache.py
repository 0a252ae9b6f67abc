"""Rendered account-detail responses kept in memory, so a poll needs no database.

Pure: no I/O, no clock. Correctness rests on invalidation, never on age: an entry lives
until the account's writer says it changed (``evict``) or until the cache stops hearing
about changes (``suspend``), and it is bounded in bytes (least recently used goes first).

The race every read-through cache has: a reader misses, reads the old row, a writer
commits and its eviction arrives (nothing to evict yet), then the reader stores the old
row for good. So a reader first ``reserve``s the domain, reads, then ``store``s with its
ticket; an eviction (or suspension) in between voids the ticket and the store is refused.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Iterable
from dataclasses import dataclass
from itertools import count

# What an entry costs beyond its bytes (dict slots, tuple, the key string), roughly.
ENTRY_OVERHEAD = 200


@dataclass(frozen=True, slots=True)
class Rendered:
    """One account's response as sent: its strong ETag and its exact body."""

    etag: bytes
    body: bytes
    content_type: bytes

    @property
    def size(self) -> int:
        return len(self.body) + len(self.etag) + ENTRY_OVERHEAD


class DetailCache:
    """Domain -> rendered detail, least recently used evicted beyond ``max_bytes``.

    Starts suspended: nothing is served or stored until ``resume`` (the change listener
    calls it once it is listening).
    """

    def __init__(self, max_bytes: int, max_pending: int = 10_000) -> None:
        self._max_bytes = max_bytes
        self._max_pending = max_pending
        self._entries: OrderedDict[str, Rendered] = OrderedDict()
        self._bytes = 0
        self._pending: dict[str, int] = {}  # domain -> ticket of the reads in flight
        self._tickets = count(1)
        self._active = False

    @property
    def active(self) -> bool:
        """Whether changes are being heard, so entries may be served."""
        return self._active

    @property
    def size_bytes(self) -> int:
        return self._bytes

    def __len__(self) -> int:
        return len(self._entries)

    def get(self, domain: str) -> Rendered | None:
        if not self._active:
            return None
        entry = self._entries.get(domain)
        if entry is not None:
            self._entries.move_to_end(domain)
        return entry

    def reserve(self, domain: str) -> int | None:
        """A ticket to take before reading the database (None: do not store the result).

        Concurrent misses of one domain share a ticket: they read before any eviction."""
        if not self._active:
            return None
        ticket = self._pending.get(domain)
        if ticket is None:
            if len(self._pending) >= self._max_pending:
                self._pending.clear()  # reads abandoned by errors; dropping only refuses stores
            ticket = self._pending[domain] = next(self._tickets)
        return ticket

    def store(self, domain: str, ticket: int | None, rendered: Rendered) -> bool:
        """Keep what a read rendered, unless the domain changed since its ``reserve``."""
        if ticket is None or not self._active or self._pending.get(domain) != ticket:
            return False
        del self._pending[domain]
        if rendered.size > self._max_bytes:
            return False
        self._drop(domain)
        self._entries[domain] = rendered
        self._bytes += rendered.size
        while self._bytes > self._max_bytes:
            _, oldest = self._entries.popitem(last=False)
            self._bytes -= oldest.size
        return True

    def release(self, domain: str, ticket: int | None) -> None:
        """Give up a reservation whose read stored nothing (an error, a 404)."""
        if ticket is not None and self._pending.get(domain) == ticket:
            del self._pending[domain]

    def evict(self, domains: Iterable[str]) -> None:
        """These accounts changed: forget them and void the reads in flight for them."""
        for domain in domains:
            self._drop(domain)
            self._pending.pop(domain, None)

    def clear(self) -> None:
        self._entries.clear()
        self._pending.clear()
        self._bytes = 0

    def suspend(self) -> None:
        """Changes may go unheard from now on: forget everything and cache nothing."""
        self._active = False
        self.clear()

    def resume(self) -> None:
        """Changes are heard again (every later commit will be evicted)."""
        self.clear()
        self._active = True

    def _drop(self, domain: str) -> None:
        entry = self._entries.pop(domain, None)
        if entry is not None:
            self._bytes -= entry.size
