"""The company IP range lookup: most specific prefix wins, IPv4 and IPv6, garbage is None."""

from __future__ import annotations

import ipaddress
import random

import pytest

from services.ingest.ip_ranges import IpRangeTable, RangeOwner, network_bounds
from services.kit.ip_ranges import RangeRow


def table(*rows: tuple[str, str] | tuple[str, str, float]) -> IpRangeTable:
    return IpRangeTable(RangeRow(*row) for row in rows)


def owner_of(lookup: IpRangeTable, address: str) -> str | None:
    found = lookup.lookup(address)
    return None if found is None else found.domain


NESTED_V4 = table(
    ("10.0.0.0/8", "wide.com"),
    ("10.1.0.0/16", "middle.com"),
    ("10.1.2.0/24", "narrow.com", 0.9),
    ("10.1.2.77/32", "host.com"),
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("9.255.255.255", None),  # just below the /8
        ("10.0.0.0", "wide.com"),  # first address of the /8
        ("10.0.255.255", "wide.com"),  # just below the /16
        ("10.1.0.0", "middle.com"),
        ("10.1.1.255", "middle.com"),  # just below the /24
        ("10.1.2.0", "narrow.com"),
        ("10.1.2.76", "narrow.com"),
        ("10.1.2.77", "host.com"),  # the /32 inside the /24
        ("10.1.2.78", "narrow.com"),
        ("10.1.2.255", "narrow.com"),  # last address of the /24
        ("10.1.3.0", "middle.com"),  # back in the /16 after the /24 closed
        ("10.1.255.255", "middle.com"),
        ("10.2.0.0", "wide.com"),  # back in the /8 after the /16 closed
        ("10.255.255.255", "wide.com"),  # last address of the /8
        ("11.0.0.0", None),
    ],
)
def test_nested_ipv4_ranges_resolve_to_the_most_specific(address: str, expected: str) -> None:
    assert owner_of(NESTED_V4, address) == expected


def test_the_owner_carries_the_range_confidence() -> None:
    assert NESTED_V4.lookup("10.1.2.9") == RangeOwner("narrow.com", 0.9)
    assert NESTED_V4.lookup("10.9.9.9") == RangeOwner("wide.com", None)


def test_ranges_sharing_a_start_or_an_end_nest() -> None:
    same_start = table(("192.168.0.0/16", "outer.com"), ("192.168.0.0/24", "inner.com"))
    assert owner_of(same_start, "192.168.0.0") == "inner.com"
    assert owner_of(same_start, "192.168.0.255") == "inner.com"
    assert owner_of(same_start, "192.168.1.0") == "outer.com"
    same_end = table(("172.16.0.0/12", "outer.com"), ("172.31.255.0/24", "inner.com"))
    assert owner_of(same_end, "172.31.254.255") == "outer.com"
    assert owner_of(same_end, "172.31.255.0") == "inner.com"
    assert owner_of(same_end, "172.31.255.255") == "inner.com"
    assert owner_of(same_end, "172.32.0.0") is None


def test_a_default_route_catches_everything_else() -> None:
    lookup = table(("0.0.0.0/0", "everyone.com"), ("203.0.113.0/24", "acme.com"))
    assert owner_of(lookup, "0.0.0.0") == "everyone.com"
    assert owner_of(lookup, "255.255.255.255") == "everyone.com"
    assert owner_of(lookup, "203.0.113.5") == "acme.com"


def test_adjacent_ranges_of_one_owner_become_one_interval() -> None:
    lookup = table(("1.0.0.0/24", "a.com"), ("1.0.1.0/24", "a.com"), ("1.0.2.0/24", "b.com"))
    assert (lookup.range_count, lookup.interval_count) == (3, 2)
    assert owner_of(lookup, "1.0.1.255") == "a.com"
    assert owner_of(lookup, "1.0.2.0") == "b.com"


def test_a_repeated_range_keeps_its_last_owner_and_host_bits_are_cleared() -> None:
    lookup = table(("10.1.2.3/8", "old.com"), ("10.0.0.0/8", "new.com"), ("8.8.8.8", "dns.com"))
    assert lookup.range_count == 2
    assert owner_of(lookup, "10.200.0.1") == "new.com"
    assert owner_of(lookup, "8.8.8.8") == "dns.com"  # a bare address is a /32
    assert owner_of(lookup, "8.8.8.9") is None


NESTED_V6 = table(
    ("2001:db8::/32", "wide.com"),
    ("2001:db8:ac::/48", "acme.com"),
    ("2001:db8:ac:1::/64", "office.com"),
    ("2001:db8:ac:1::ff00/120", "lab.com"),  # longer than /64: the fine table
    ("2001:db8:ac:1:8000::/65", "half.com"),
    ("fd00::1/128", "one.com"),
)


@pytest.mark.parametrize(
    ("address", "expected"),
    [
        ("2001:db7:ffff:ffff:ffff:ffff:ffff:ffff", None),
        ("2001:db8::", "wide.com"),
        ("2001:db8:1::1", "wide.com"),
        ("2001:db8:ab:ffff:ffff:ffff:ffff:ffff", "wide.com"),
        ("2001:db8:ac::", "acme.com"),
        ("2001:db8:ac:2::1", "acme.com"),
        ("2001:db8:ac:1::1", "office.com"),
        ("2001:db8:ac:1::feff", "office.com"),
        ("2001:db8:ac:1::ff00", "lab.com"),
        ("2001:db8:ac:1::ffff", "lab.com"),
        ("2001:db8:ac:1::1:0", "office.com"),
        ("2001:db8:ac:1:7fff:ffff:ffff:ffff", "office.com"),
        ("2001:db8:ac:1:8000::", "half.com"),
        ("2001:db8:ac:1:ffff:ffff:ffff:ffff", "half.com"),
        ("2001:db8:ffff:ffff:ffff:ffff:ffff:ffff", "wide.com"),
        ("2001:db9::", None),
        ("fd00::1", "one.com"),
        ("fd00::2", None),
        ("2001:DB8:AC:1::1", "office.com"),  # upper case is the same address
    ],
)
def test_nested_ipv6_ranges_resolve_to_the_most_specific(address: str, expected: str) -> None:
    assert owner_of(NESTED_V6, address) == expected


def test_ipv4_mapped_ipv6_addresses_are_looked_up_as_ipv4() -> None:
    assert owner_of(NESTED_V4, "::ffff:10.1.2.3") == "narrow.com"
    assert owner_of(NESTED_V4, "::ffff:a01:203") == "narrow.com"


def test_families_do_not_mix() -> None:
    assert owner_of(NESTED_V6, "10.1.2.3") is None
    assert owner_of(NESTED_V4, "::a01:203") is None  # IPv4-compatible, not mapped


@pytest.mark.parametrize(
    "garbage",
    ["", " ", "abc", "10.1.2", "10.1.2.3.4", "256.1.1.1", "10.1.2.3/24", "10.1.2.3\x00",
     "2001:db8::g", ":::", "1" * 100, "-1", "010.1.2.3"],
)  # fmt: skip
def test_garbage_addresses_find_nothing(garbage: str) -> None:
    assert NESTED_V4.lookup(garbage) is None
    assert NESTED_V6.lookup(garbage) is None


def test_garbage_ranges_are_skipped_when_building() -> None:
    lookup = table(
        ("nope", "a.com"),
        ("10.0.0.0/33", "a.com"),
        ("::/129", "a.com"),
        ("10.0.0.0/-1", "a.com"),
        ("10.0.0.0/x", "a.com"),
        ("", "a.com"),
        ("192.0.2.0/24", "ok.com"),
    )
    assert lookup.range_count == 1
    assert owner_of(lookup, "192.0.2.1") == "ok.com"


def test_a_range_repeated_around_nested_ones_keeps_its_last_owner() -> None:
    lookup = table(("10.0.0.0/8", "a.com"), ("10.1.0.0/16", "b.com"), ("10.0.0.0/8", "c.com"))
    assert lookup.range_count == 2
    assert [owner_of(lookup, ip) for ip in ("10.0.0.1", "10.1.0.1", "10.2.0.1")] == [
        "c.com",
        "b.com",
        "c.com",
    ]


def test_network_bounds_clear_host_bits() -> None:
    assert network_bounds("10.1.2.3/16") == (4, 0x0A010000, 16)
    assert network_bounds("2001:db8::1/32") == (6, 0x20010DB8 << 96, 32)
    assert network_bounds("1.2.3.4") == (4, 0x01020304, 32)
    assert network_bounds("1.2.3.4/") is None


def test_an_empty_table_finds_nothing() -> None:
    empty = IpRangeTable()
    assert (empty.range_count, empty.interval_count) == (0, 0)
    assert empty.lookup("10.0.0.1") is None
    assert empty.lookup("2001:db8::1") is None


def test_random_nested_ranges_agree_with_a_naive_most_specific_scan() -> None:
    """Cross-check against ``ipaddress``: of the ranges holding an address, the longest
    prefix names the owner (a repeated network keeps its last owner)."""
    rng = random.Random(42)
    rows: list[RangeRow] = []
    for index in range(400):
        base = rng.choice([0x0A000000, 0x0A010000, 0xC0A80000])
        prefix = rng.randint(8, 32)
        address = base | rng.getrandbits(16)
        network = ipaddress.ip_network(f"{ipaddress.IPv4Address(address)}/{prefix}", strict=False)
        rows.append(RangeRow(str(network), f"d{index % 37}.com"))
    lookup = IpRangeTable(rows)
    networks = {ipaddress.ip_network(row.cidr): row.domain for row in rows}
    for _ in range(2000):
        probe = ipaddress.IPv4Address(rng.choice([0x0A000000, 0x0A010000, 0xC0A80000, 0x0B000000])
                                      | rng.getrandbits(16))  # fmt: skip
        holding = [n for n in networks if probe in n]
        expected = networks[max(holding, key=lambda n: n.prefixlen)] if holding else None
        assert owner_of(lookup, str(probe)) == expected, probe
