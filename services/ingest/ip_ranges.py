"""Company IP ranges: which account an IP address belongs to, in microseconds (pure).

CIDR ranges are either nested or disjoint, so a sweep over them sorted by start (widest
first) cuts them into disjoint intervals where the most specific prefix wins. Intervals
live in flat ``array`` columns (4 bytes per IPv4 bound, 8 per IPv6 /64 bound, 4 per owner)
searched with ``bisect``: a million ranges take about 40 MB, not the hundreds a dict of
networks would. Every 16th start is also kept in a plain list, bisected first, so a lookup
then bisects only 16 slots of the big array. IPv6 ranges longer than /64 are rare
(companies get /48s); they go to a small separate table of full 128-bit bounds consulted
first, since any of them is more specific than every range of /64 or shorter holding it.
"""

from __future__ import annotations

import math
import socket
from array import array
from bisect import bisect_right
from collections.abc import Iterable, MutableSequence, Sequence
from dataclasses import dataclass

from services.kit.ip_ranges import RangeRow

_V6_COARSE_BITS = 64  # bounds of /0../64 ranges fit in their top 64 bits
_SAMPLE_STEP = 16
_ROW_BITS = 32  # up to four billion rows
_ROW_MASK = (1 << _ROW_BITS) - 1
_pton = socket.inet_pton
_from_bytes = int.from_bytes
_AF_INET, _AF_INET6 = socket.AF_INET, socket.AF_INET6


@dataclass(frozen=True, slots=True)
class RangeOwner:
    """The account a range belongs to and how sure the range's source is (None: unsaid)."""

    domain: str
    confidence: float | None


class _Intervals:
    """Disjoint, sorted ``[start, end]`` intervals, each naming an owner by index."""

    __slots__ = ("_count", "_ends", "_owners", "_sample", "_starts")

    def __init__(
        self, starts: MutableSequence[int], ends: MutableSequence[int], owners: MutableSequence[int]
    ) -> None:
        self._starts, self._ends, self._owners = starts, ends, owners
        self._count = len(starts)
        self._sample = list(starts[::_SAMPLE_STEP])  # starts[0], starts[16], ...

    def __len__(self) -> int:
        return self._count

    def find(self, address: int) -> int | None:
        """The owner of the interval holding ``address``, if one does."""
        sampled = bisect_right(self._sample, address)
        if sampled == 0:
            return None  # below the first start
        # The last start <= address lies between two consecutive sampled starts.
        low = (sampled - 1) * _SAMPLE_STEP
        high = min(low + _SAMPLE_STEP, self._count)
        index = bisect_right(self._starts, address, low, high) - 1
        if address <= self._ends[index]:
            return self._owners[index]
        return None


def _build(
    packed: list[int],
    bits: int,
    row_owner: Sequence[int],
    starts: MutableSequence[int],
    ends: MutableSequence[int],
    owners: MutableSequence[int],
) -> tuple[_Intervals, int]:
    """Sweep nested-or-disjoint ranges into disjoint intervals; also the distinct ranges.

    Each range is one int, ``start, (max - end), row number`` packed high to low, so a
    plain integer sort orders by start with the widest first (a narrower one nests inside
    it) and a repeated range right after its earlier rows: much faster and smaller than
    sorting tuples with a key function. The row number names the owner (``row_owner``).
    """
    packed.sort()
    top = (1 << bits) - 1
    # The enclosing ranges, innermost last: [start, end, owner].
    open_ranges: list[list[int]] = []
    cursor = distinct = 0

    def emit(start: int, end: int, owner: int) -> None:
        if start > end:
            return
        if starts and owners[-1] == owner and ends[-1] + 1 == start:
            ends[-1] = end  # adjacent pieces of one owner: one interval
            return
        starts.append(start)
        ends.append(end)
        owners.append(owner)

    for key in packed:
        owner, rest = row_owner[key & _ROW_MASK], key >> _ROW_BITS
        start, end = rest >> bits, top - (rest & top)
        if open_ranges and open_ranges[-1][0] == start and open_ranges[-1][1] == end:
            open_ranges[-1][2] = owner  # the same range again: the later row wins
            continue
        distinct += 1
        while open_ranges and open_ranges[-1][1] < start:
            _, closed_end, closed_owner = open_ranges.pop()
            emit(cursor, closed_end, closed_owner)
            cursor = closed_end + 1
        if open_ranges:
            emit(cursor, start - 1, open_ranges[-1][2])
        open_ranges.append([start, end, owner])
        cursor = start
    while open_ranges:
        _, closed_end, closed_owner = open_ranges.pop()
        emit(cursor, closed_end, closed_owner)
        cursor = closed_end + 1
    return _Intervals(starts, ends, owners), distinct


def _pack(start: int, end: int, row: int, bits: int) -> int:
    return (((start << bits) | (((1 << bits) - 1) - end)) << _ROW_BITS) | row


class IpRangeTable:
    """Company IP ranges, looked up by address; build once, share read-only."""

    __slots__ = (
        "_confidences",
        "_domain_of",
        "_domains",
        "_made",
        "_v4",
        "_v6_coarse",
        "_v6_fine",
        "range_count",
    )

    def __init__(self, ranges: Iterable[RangeRow] = ()) -> None:
        domain_ids: dict[str, int] = {}
        owner_ids: dict[tuple[int, float | None], int] = {}
        row_owner = array("I")
        packed: tuple[list[int], list[int], list[int]] = ([], [], [])  # v4, v6 /<=64, v6 longer
        for item in ranges:
            bounds = network_bounds(item.cidr)
            if bounds is None:
                continue
            domain = domain_ids.setdefault(item.domain, len(domain_ids))
            owner = owner_ids.setdefault((domain, item.confidence), len(owner_ids))
            version, first, prefix = bounds
            row = len(row_owner)
            row_owner.append(owner)
            if version == 4:
                packed[0].append(_pack(first, first | ((1 << (32 - prefix)) - 1), row, 32))
            elif prefix <= _V6_COARSE_BITS:
                high = first >> 64
                packed[1].append(_pack(high, high | ((1 << (64 - prefix)) - 1), row, 64))
            else:
                packed[2].append(_pack(first, first | ((1 << (128 - prefix)) - 1), row, 128))
        # Owners as flat columns: a domain id and a confidence (NaN: the range said none).
        self._domains: Sequence[str] = tuple(domain_ids)
        self._domain_of = array("I", (domain for domain, _ in owner_ids))
        self._confidences = array(
            "d", (math.nan if conf is None else conf for _, conf in owner_ids)
        )
        del domain_ids, owner_ids
        self._made: dict[int, RangeOwner] = {}
        self._v4, v4_count = _build(packed[0], 32, row_owner, array("I"), array("I"), array("I"))
        packed[0].clear()
        self._v6_coarse, coarse_count = _build(
            packed[1], 64, row_owner, array("Q"), array("Q"), array("I")
        )
        packed[1].clear()
        self._v6_fine, fine_count = _build(packed[2], 128, row_owner, [], [], array("I"))
        self.range_count = v4_count + coarse_count + fine_count

    @property
    def interval_count(self) -> int:
        return len(self._v4) + len(self._v6_coarse) + len(self._v6_fine)

    def lookup(self, address: str) -> RangeOwner | None:
        """The owner of the most specific range holding ``address``; garbage gives None."""
        try:
            if ":" not in address:
                found = self._v4.find(_from_bytes(_pton(_AF_INET, address)))
            else:
                found = self._find_v6(_from_bytes(_pton(_AF_INET6, address.partition("%")[0])))
        except (OSError, TypeError, ValueError):
            return None
        if found is None:
            return None
        owner = self._made.get(found)
        if owner is None:  # made once per owner actually seen, not for every one stored
            confidence = self._confidences[found]
            domain = self._domains[self._domain_of[found]]
            owner = RangeOwner(domain, None if math.isnan(confidence) else confidence)
            self._made[found] = owner
        return owner

    def _find_v6(self, number: int) -> int | None:
        if number >> 32 == 0xFFFF:  # ::ffff:a.b.c.d is an IPv4 address
            return self._v4.find(number & 0xFFFFFFFF)
        found = self._v6_fine.find(number)
        return self._v6_coarse.find(number >> 64) if found is None else found


EMPTY_TABLE = IpRangeTable()


def network_bounds(cidr: str) -> tuple[int, int, int] | None:
    """``(version, first address, prefix length)`` of a CIDR or of a bare address (a
    one-address range), host bits cleared; None for garbage. Several times faster than
    ``ipaddress.ip_network``, which matters when building from millions of rows."""
    if not isinstance(cidr, str):
        return None
    text, slash, length = cidr.strip().partition("/")
    version, bits, family = (6, 128, _AF_INET6) if ":" in text else (4, 32, _AF_INET)
    try:
        number = _from_bytes(_pton(family, text))
    except (OSError, ValueError):
        return None
    if not slash:
        prefix = bits
    elif length.isdigit() and len(length) <= 3 and int(length) <= bits:
        prefix = int(length)
    else:
        return None
    host_bits = bits - prefix
    return version, (number >> host_bits) << host_bits, prefix
