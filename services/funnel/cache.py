"""A bounded in-process cache of account states, trusted only at the revision it saw.

Decoding a stored state costs far more than reading its revision, so each batch reads
the revisions of its accounts and decodes only those whose cached revision differs: a
state written by another member (after a rebalance) or never committed (a rolled-back
batch) carries another revision and is reloaded.
"""

from __future__ import annotations

from collections import OrderedDict

from services.funnel.state import AccountState


class StateCache:
    def __init__(self, capacity: int) -> None:
        self._capacity = capacity
        self._entries: OrderedDict[str, tuple[int, AccountState]] = OrderedDict()

    def get(self, domain: str, revision: int) -> AccountState | None:
        entry = self._entries.get(domain)
        if entry is None or entry[0] != revision:
            return None
        self._entries.move_to_end(domain)
        return entry[1]

    def put(self, domain: str, revision: int, state: AccountState) -> None:
        self._entries[domain] = (revision, state)
        self._entries.move_to_end(domain)
        while len(self._entries) > self._capacity:
            self._entries.popitem(last=False)
