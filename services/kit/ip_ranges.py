"""Company IP ranges as stored: parsing uploads (CSV or JSON rows) and the table's reads/writes.

Shared by the API (admin uploads), the CLI (``abm ip-ranges load``) and ingest (which
builds its in-memory lookup from ``load_ranges``). A bad row is reported with its line
number and reason and skipped; the good rows are loaded.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from ipaddress import ip_network
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from schemas.envelope import normalize_domain
from services.kit import db
from services.kit.dialect import upsert_rows
from services.kit.tables import company_ip_ranges

LoadMode = Literal["merge", "replace"]
MAX_REPORTED_ERRORS = 1000  # a file of a million bad rows must not become a huge answer
_WRITE_CHUNK = 5000
_READ_CHUNK = 10_000


@dataclass(frozen=True, slots=True)
class RangeRow:
    """One company range: a normalized CIDR, the account's domain, an optional confidence."""

    cidr: str
    domain: str
    confidence: float | None = None


@dataclass(frozen=True, slots=True)
class RowError:
    line: int
    reason: str


@dataclass
class ParsedRanges:
    rows: list[RangeRow] = field(default_factory=list)
    errors: list[RowError] = field(default_factory=list)  # the first MAX_REPORTED_ERRORS
    bad: int = 0  # every bad row, reported or not

    def reject(self, line: int, reason: str) -> None:
        self.bad += 1
        if len(self.errors) < MAX_REPORTED_ERRORS:
            self.errors.append(RowError(line, reason))


class _BadCell(ValueError):
    """A cell that cannot be used; its message is the reason reported for the row."""


def validate_row(cidr: Any, domain: Any, confidence: Any = None) -> RangeRow | str:
    """A valid row, or the reason it is not one."""
    try:
        return RangeRow(_cidr(cidr), _domain(domain), _confidence(confidence))
    except _BadCell as bad:
        return str(bad)


def _cidr(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _BadCell("cidr: missing")
    try:
        return str(ip_network(value.strip(), strict=False))
    except ValueError:
        raise _BadCell("cidr: not a CIDR range or IP address") from None


def _domain(value: Any) -> str:
    if not isinstance(value, str) or not value.strip():
        raise _BadCell("domain: missing")
    try:
        return normalize_domain(value)
    except ValueError:
        raise _BadCell("domain: not a domain name") from None


def _confidence(value: Any) -> float | None:
    if value is None or (isinstance(value, str) and not value.strip()):
        return None
    try:
        number = float(value) if not isinstance(value, bool) else math.nan
    except (TypeError, ValueError):
        number = math.nan
    if not math.isfinite(number) or not 0 <= number <= 1:
        raise _BadCell("confidence: must be a number from 0 to 1")
    return number


def parse_csv(lines: Iterable[str]) -> ParsedRanges:
    """Rows ``cidr,domain[,confidence]``; an optional header, blank and ``#`` lines skipped.

    A range given twice keeps its first row; the repeat is reported.
    """
    parsed = ParsedRanges()
    first_line: dict[str, int] = {}
    reader = csv.reader(lines)
    line = 0
    while True:
        try:
            cells = next(reader)
        except StopIteration:
            break
        except csv.Error as error:
            parsed.reject(reader.line_num, f"unreadable CSV: {error}")
            continue
        line = reader.line_num
        if not cells or not "".join(cells).strip() or cells[0].lstrip().startswith("#"):
            continue
        if not first_line and not parsed.bad and cells[0].strip().lower() == "cidr":
            continue  # the header
        if len(cells) < 2 or len(cells) > 3:
            parsed.reject(line, "expected cidr,domain[,confidence]")
            continue
        _add(parsed, first_line, line, validate_row(*cells))
    return parsed


def parse_items(items: Iterable[Any]) -> ParsedRanges:
    """JSON objects ``{cidr, domain, confidence?}``; "line" is the item's 1-based position."""
    parsed = ParsedRanges()
    first_line: dict[str, int] = {}
    for line, item in enumerate(items, start=1):
        if not isinstance(item, Mapping):
            parsed.reject(line, "expected an object {cidr, domain, confidence?}")
            continue
        result = validate_row(item.get("cidr"), item.get("domain"), item.get("confidence"))
        _add(parsed, first_line, line, result)
    return parsed


def _add(
    parsed: ParsedRanges, first_line: dict[str, int], line: int, result: RangeRow | str
) -> None:
    if isinstance(result, str):
        parsed.reject(line, result)
    elif result.cidr in first_line:
        parsed.reject(line, f"cidr: {result.cidr} repeats line {first_line[result.cidr]}")
    else:
        first_line[result.cidr] = line
        parsed.rows.append(result)


# --- the table ------------------------------------------------------------------------------


async def store_ranges(
    session: AsyncSession, rows: list[RangeRow], mode: LoadMode, label: str | None, now: datetime
) -> None:
    """Write ``rows``; ``replace`` first removes every range the upload does not hold."""
    if mode == "replace":
        await session.execute(delete(company_ip_ranges))
    for start in range(0, len(rows), _WRITE_CHUNK):
        chunk = [
            {
                "cidr": row.cidr,
                "domain": row.domain,
                "confidence": row.confidence,
                "label": label,
                "updated_at": now,
            }
            for row in rows[start : start + _WRITE_CHUNK]
        ]
        await upsert_rows(session, company_ip_ranges, chunk, ["cidr"])


async def delete_ranges(session: AsyncSession, cidrs: list[str] | None = None) -> int:
    """Remove the given ranges (normalized like uploads), or every range; how many went."""
    statement = delete(company_ip_ranges)
    if cidrs is not None:
        normalized = [
            row.cidr for c in cidrs if isinstance(row := validate_row(c, "x.io"), RangeRow)
        ]
        statement = statement.where(company_ip_ranges.c.cidr.in_(normalized))
    result = await session.execute(statement)
    return int(result.rowcount)  # type: ignore[attr-defined]


@dataclass(frozen=True, slots=True)
class RangeSummary:
    ranges: int
    domains: int
    updated_at: datetime | None


async def range_summary(session: AsyncSession) -> RangeSummary:
    row = (
        await session.execute(
            select(
                func.count(),
                func.count(func.distinct(company_ip_ranges.c.domain)),
                func.max(company_ip_ranges.c.updated_at),
            ).select_from(company_ip_ranges)
        )
    ).one()
    return RangeSummary(int(row[0]), int(row[1]), _aware(row[2]))


async def range_fingerprint(session: AsyncSession) -> tuple[int, datetime | None]:
    """Cheap change detection: (row count, newest update). Any write moves one of them."""
    row = (
        await session.execute(
            select(func.count(), func.max(company_ip_ranges.c.updated_at)).select_from(
                company_ip_ranges
            )
        )
    ).one()
    return int(row[0]), _aware(row[1])


async def load_ranges(session: AsyncSession) -> list[RangeRow]:
    """Every stored range, streamed rather than fetched as one huge result; a company's
    many ranges share one domain string (a million rows hold far fewer domains)."""
    columns = (company_ip_ranges.c.cidr, company_ip_ranges.c.domain, company_ip_ranges.c.confidence)
    result = await session.stream(select(*columns))
    domains: dict[str, str] = {}
    rows: list[RangeRow] = []
    async for partition in result.partitions(_READ_CHUNK):  # one await per chunk, not per row
        rows += (RangeRow(c, domains.setdefault(d, d), conf) for c, d, conf in partition)
    return rows


def _aware(value: Any) -> datetime | None:
    """``max()`` bypasses the column type on SQLite: a naive string or datetime is UTC."""
    if value is None:
        return None
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    if isinstance(value, datetime) and value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value if isinstance(value, datetime) else None


def iter_lines(text: str) -> Iterator[str]:
    """CSV text as lines for ``parse_csv`` (keeps quoted newlines working)."""
    return iter(text.splitlines(keepends=True))


async def load_csv_file(
    database_url: str, path: Path, mode: LoadMode, label: str | None
) -> tuple[ParsedRanges, RangeSummary]:
    """``abm ip-ranges load``: parse a CSV file, store its good rows; the table after."""
    with path.open(newline="", encoding="utf-8-sig") as lines:
        parsed = parse_csv(lines)
    if mode == "replace" and not parsed.rows:
        return parsed, RangeSummary(0, 0, None)  # never wipe the table with an empty file
    engine = db.create_engine(url=database_url)
    try:
        async with db.create_sessionmaker(engine)() as session, session.begin():
            await store_ranges(session, parsed.rows, mode, label or path.name, datetime.now(UTC))
            summary = await range_summary(session)
    finally:
        await engine.dispose()
    return parsed, summary
