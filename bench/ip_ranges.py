"""Company IP range lookup: build time, memory and lookups/s on a million random ranges.

Run standalone: ``.venv/bin/python -m bench.ip_ranges [RANGES]``. Ranges are 80% IPv4
(/16 to /32, most of them /24 to /29, as company allocations are) and 20% IPv6 (/32 to
/64, a few longer), nested and overlapping at random, owned by 200,000 domains, each
with one of a few confidences (or none). Lookups
are half addresses inside some range, half random addresses; the baseline is parsing
the same address strings with ``socket.inet_pton`` alone, the floor of any lookup.
"""

from __future__ import annotations

import gc
import random
import socket
import sys
import time
import tracemalloc
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

from services.ingest.ip_ranges import IpRangeTable
from services.kit.ip_ranges import RangeRow

V4_PREFIXES = [16, 20, 22, 24, 24, 24, 25, 26, 27, 28, 28, 29, 29, 30, 32]
V6_PREFIXES = [32, 40, 44, 48, 48, 48, 52, 56, 56, 64, 64, 96, 128]
CONFIDENCES = [None, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0]


@dataclass(frozen=True)
class IpRangesResult:
    ranges: int
    intervals: int
    build_s: float
    retained_mb: float
    peak_mb: float
    lookups: int
    lookups_per_s: float
    hit_ratio: float
    parse_only_per_s: float


def random_ranges(count: int, seed: int = 7) -> list[RangeRow]:
    rng = random.Random(seed)
    rows = []
    for index in range(count):
        domain = f"company{index % 200_000}.com"
        if rng.random() < 0.8:
            prefix = rng.choice(V4_PREFIXES)
            address = rng.getrandbits(32) >> (32 - prefix) << (32 - prefix)
            confidence = rng.choice(CONFIDENCES)
            rows.append(RangeRow(f"{IPv4Address(address)}/{prefix}", domain, confidence))
        else:
            prefix = rng.choice(V6_PREFIXES)
            address = (0x2001 << 112 | rng.getrandbits(112)) >> (128 - prefix) << (128 - prefix)
            confidence = rng.choice(CONFIDENCES)
            rows.append(RangeRow(f"{IPv6Address(address)}/{prefix}", domain, confidence))
    return rows


def probe_addresses(rows: list[RangeRow], count: int, seed: int = 11) -> list[str]:
    """Half inside a range (its first address + a random offset), half random."""
    rng = random.Random(seed)
    probes = []
    for _ in range(count):
        if rng.random() < 0.5:
            cidr = rng.choice(rows).cidr
            base, _, prefix = cidr.partition("/")
            if ":" in base:
                offset = rng.getrandbits(128 - int(prefix)) if int(prefix) < 128 else 0
                probes.append(str(IPv6Address(int(IPv6Address(base)) + offset)))
            else:
                offset = rng.getrandbits(32 - int(prefix)) if int(prefix) < 32 else 0
                probes.append(str(IPv4Address(int(IPv4Address(base)) + offset)))
        elif rng.random() < 0.8:
            probes.append(str(IPv4Address(rng.getrandbits(32))))
        else:
            probes.append(str(IPv6Address(0x2001 << 112 | rng.getrandbits(112))))
    return probes


def measure_ip_ranges(count: int = 1_000_000, lookups: int = 1_000_000) -> IpRangesResult:
    rows = random_ranges(count)
    probes = probe_addresses(rows, lookups)
    gc.collect()
    started = time.perf_counter()
    table = IpRangeTable(rows)
    build_s = time.perf_counter() - started
    del table
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    table = IpRangeTable(rows)
    retained, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    lookup = table.lookup
    started = time.perf_counter()
    hits = sum(1 for address in probes if lookup(address) is not None)
    lookup_s = time.perf_counter() - started
    inet_pton, af_inet, af_inet6 = socket.inet_pton, socket.AF_INET, socket.AF_INET6
    started = time.perf_counter()
    for address in probes:
        inet_pton(af_inet6 if ":" in address else af_inet, address)
    parse_s = time.perf_counter() - started
    return IpRangesResult(
        ranges=table.range_count,
        intervals=table.interval_count,
        build_s=build_s,
        retained_mb=(retained - before) / 1e6,
        peak_mb=(peak - before) / 1e6,
        lookups=lookups,
        lookups_per_s=lookups / lookup_s,
        hit_ratio=hits / lookups,
        parse_only_per_s=lookups / parse_s,
    )


def render_ip_ranges(result: IpRangesResult) -> str:
    return "\n".join(
        [
            f"company IP ranges: {result.ranges:,} distinct ranges -> "
            f"{result.intervals:,} disjoint intervals",
            f"  build: {result.build_s:.2f} s; memory retained {result.retained_mb:.0f} MB "
            f"(peak during build {result.peak_mb:.0f} MB, the input rows excluded)",
            f"  lookups: {result.lookups_per_s:,.0f}/s "
            f"({1e6 / result.lookups_per_s:.2f} µs each, {result.hit_ratio:.0%} hits); "
            f"parsing the addresses alone: {result.parse_only_per_s:,.0f}/s",
        ]
    )


if __name__ == "__main__":
    size = int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000
    print(render_ip_ranges(measure_ip_ranges(size)))
