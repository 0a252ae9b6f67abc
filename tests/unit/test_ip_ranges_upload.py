"""Company IP range uploads: CSV and JSON rows, bad rows reported by line and skipped."""

from __future__ import annotations

import pytest

from services.kit.ip_ranges import (
    MAX_REPORTED_ERRORS,
    RangeRow,
    RowError,
    iter_lines,
    parse_csv,
    parse_items,
    validate_row,
)

CSV = """cidr,domain,confidence
203.0.113.0/24,Acme.com,0.8
# a comment line

10.0.0.0/8,https://www.initech.io/
not-a-cidr,x.com
198.51.100.0/24,not a domain
203.0.113.7/24,globex.com
2001:db8:ac::/48,acme.com,1.5
1.2.3.4,a.com,0.5,extra
"2001:DB8:1::1/48",umbrella.com,
8.8.8.8,dns.com,0
"""


def test_good_rows_load_and_bad_rows_are_reported_with_line_and_reason() -> None:
    parsed = parse_csv(iter_lines(CSV))
    assert parsed.rows == [
        RangeRow("203.0.113.0/24", "acme.com", 0.8),
        RangeRow("10.0.0.0/8", "initech.io", None),
        RangeRow("2001:db8:1::/48", "umbrella.com", None),
        RangeRow("8.8.8.8/32", "dns.com", 0.0),
    ]
    assert parsed.errors == [
        RowError(6, "cidr: not a CIDR range or IP address"),
        RowError(7, "domain: not a domain name"),
        RowError(8, "cidr: 203.0.113.0/24 repeats line 2"),
        RowError(9, "confidence: must be a number from 0 to 1"),
        RowError(10, "expected cidr,domain[,confidence]"),
    ]
    assert parsed.bad == 5


def test_a_file_without_header_starts_at_line_one() -> None:
    parsed = parse_csv(iter_lines("10.0.0.0/8,a.com\nbad\n"))
    assert parsed.rows == [RangeRow("10.0.0.0/8", "a.com")]
    assert parsed.errors == [RowError(2, "expected cidr,domain[,confidence]")]


@pytest.mark.parametrize(
    ("cells", "reason"),
    [
        (("", "a.com"), "cidr: missing"),
        (("10.0.0.0/33", "a.com"), "cidr: not a CIDR range or IP address"),
        (("10.0.0.0/8", ""), "domain: missing"),
        (("10.0.0.0/8", "a.com", "high"), "confidence: must be a number from 0 to 1"),
        (("10.0.0.0/8", "a.com", "-0.1"), "confidence: must be a number from 0 to 1"),
        (("10.0.0.0/8", "a.com", "nan"), "confidence: must be a number from 0 to 1"),
        (("10.0.0.0/8", "a.com", True), "confidence: must be a number from 0 to 1"),
        ((None, "a.com"), "cidr: missing"),
        (("10.0.0.0/8", 42), "domain: missing"),
    ],
)
def test_each_bad_cell_has_its_reason(cells: tuple[object, ...], reason: str) -> None:
    assert validate_row(*cells) == reason


def test_json_items_are_validated_by_position() -> None:
    parsed = parse_items(
        [
            {"cidr": "192.0.2.0/24", "domain": "acme.com", "confidence": 0.7},
            "not an object",
            {"cidr": "192.0.2.0/24", "domain": "other.com"},
            {"domain": "x.com"},
            {"cidr": "2001:db8::/32", "domain": "ipv6.net"},
        ]
    )
    assert parsed.rows == [
        RangeRow("192.0.2.0/24", "acme.com", 0.7),
        RangeRow("2001:db8::/32", "ipv6.net", None),
    ]
    assert parsed.errors == [
        RowError(2, "expected an object {cidr, domain, confidence?}"),
        RowError(3, "cidr: 192.0.2.0/24 repeats line 1"),
        RowError(4, "cidr: missing"),
    ]


def test_reported_errors_are_capped_but_all_counted() -> None:
    parsed = parse_csv(iter_lines("junk\n" * (MAX_REPORTED_ERRORS + 5)))
    assert len(parsed.errors) == MAX_REPORTED_ERRORS and parsed.bad == MAX_REPORTED_ERRORS + 5


def test_quoted_cells_and_a_capitalised_header_work() -> None:
    parsed = parse_csv(iter_lines('CIDR,Domain\n"10.0.0.0/8","a.com"\n'))
    assert parsed.rows == [RangeRow("10.0.0.0/8", "a.com")] and parsed.bad == 0
