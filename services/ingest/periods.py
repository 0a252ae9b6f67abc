"""A campaign spend's ``period`` -> ``period_start``/``period_end`` (inclusive dates, pure).

Senders that cannot set two dates (a Snowplow structured event's label, a spreadsheet
export) name the period in one value: ``2026-04`` (that month), ``2026-04-15`` (that day)
or ``2026-04-01/2026-04-15`` (an ISO 8601 interval of dates, both ends included, as the
funnel's spend facts are).
"""

from __future__ import annotations

import calendar
import re
from collections.abc import Mapping
from datetime import date
from typing import Any

from services.ingest.errors import RejectedMessage

_MONTH = re.compile(r"^([0-9]{4})-([0-9]{2})$")
# Strict: date.fromisoformat also takes "20260415" and week dates, which are not documented.
_DAY = re.compile(r"^[0-9]{4}-[0-9]{2}-[0-9]{2}$")
FORMATS = "YYYY-MM, YYYY-MM-DD or START/END dates (YYYY-MM-DD/YYYY-MM-DD)"


def with_period_dates(fields: Mapping[str, Any]) -> dict[str, Any]:
    """``fields`` with ``period`` parsed into ``period_start``/``period_end`` when neither
    is set (explicit dates win); ``RejectedMessage("period", ...)`` for a bad ``period``."""
    document = {k: v for k, v in fields.items() if k != "period"}
    period = fields.get("period")
    if period in (None, "") or any(
        fields.get(k) not in (None, "") for k in ("period_start", "period_end")
    ):
        return document
    document["period_start"], document["period_end"] = period_dates(period)
    return document


def period_dates(period: Any) -> tuple[date, date]:
    """The first and last day (inclusive) of a period; ``RejectedMessage`` for anything else."""
    if not isinstance(period, str):
        raise RejectedMessage("period", f"must be a string: {FORMATS}")
    text = period.strip()
    if "/" in text:
        start_text, _, end_text = text.partition("/")
        start, end = _day(start_text.strip(), period), _day(end_text.strip(), period)
        if start > end:
            raise RejectedMessage("period", f"ends before it starts: {period[:40]!r}")
        return start, end
    if month := _MONTH.match(text):
        year, number = int(month[1]), int(month[2])
        try:
            last = calendar.monthrange(year, number)[1]
            return date(year, number, 1), date(year, number, last)
        except ValueError:  # month 13 (calendar.IllegalMonthError), year 0000
            raise RejectedMessage("period", f"no such month: {period[:40]!r}") from None
    day = _day(text, period)
    return day, day


def _day(text: str, period: str) -> date:
    if _DAY.match(text):
        try:
            return date.fromisoformat(text)
        except ValueError:
            raise RejectedMessage("period", f"no such date: {period[:40]!r}") from None
    raise RejectedMessage("period", f"not {FORMATS}: {period[:40]!r}")
