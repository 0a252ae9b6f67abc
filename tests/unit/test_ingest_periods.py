"""A campaign spend's ``period`` becomes its dates through every mapping (pure)."""

from __future__ import annotations

from datetime import UTC, date, datetime
from typing import Any

import pytest

from services.ingest.errors import RejectedMessage
from services.ingest.native import native_event
from services.ingest.periods import period_dates
from services.ingest.segment import Received, to_event
from services.ingest.snowplow import to_segment

RECEIVED = Received(at=datetime(2026, 5, 1, 12, tzinfo=UTC), source="ads")


def _spend(**properties: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": "s-1",
        "event": "Campaign Spend",
        "context": {"groupId": "acme.com"},
        "properties": {"channel": "display", "amount": 100, **properties},
    }


@pytest.mark.parametrize(
    ("period", "start", "end"),
    [
        ("2026-04", date(2026, 4, 1), date(2026, 4, 30)),
        ("2024-02", date(2024, 2, 1), date(2024, 2, 29)),
        ("2026-04-15", date(2026, 4, 15), date(2026, 4, 15)),
        ("2026-04-01/2026-04-15", date(2026, 4, 1), date(2026, 4, 15)),
        (" 2026-12 ", date(2026, 12, 1), date(2026, 12, 31)),
    ],
)
def test_a_month_a_day_or_an_interval_of_dates_is_a_period(
    period: str, start: date, end: date
) -> None:
    assert period_dates(period) == (start, end)


@pytest.mark.parametrize(
    "period",
    ["Q2 2026", "2026-13", "0000-01", "2026-02-30", "20260415", "2026-W15", "2026",
     "2026-04-15/2026-04-01", "2026-04/2026-05", "2026-04-01/", 202604, ["2026-04"]],
)  # fmt: skip
def test_anything_else_is_rejected_on_the_period_field(period: Any) -> None:
    with pytest.raises(RejectedMessage) as rejected:
        period_dates(period)
    assert rejected.value.field == "period" and rejected.value.reason


def test_a_segment_track_calls_period_becomes_its_dates() -> None:
    event = to_event(_spend(period="2026-04"), RECEIVED, lambda _: None)
    assert event is not None and event.type == "campaign_spent"
    assert (event.period_start, event.period_end) == (date(2026, 4, 1), date(2026, 4, 30))


def test_explicit_dates_win_over_a_period() -> None:
    message = _spend(period="2026-04", period_start="2026-04-07", period_end="2026-04-13")
    event = to_event(message, RECEIVED, lambda _: None)
    assert event is not None and event.type == "campaign_spent"
    assert (event.period_start, event.period_end) == (date(2026, 4, 7), date(2026, 4, 13))


def test_a_bad_period_rejects_the_message_naming_the_field() -> None:
    with pytest.raises(RejectedMessage) as rejected:
        to_event(_spend(period="last month"), RECEIVED, lambda _: None)
    assert rejected.value.field == "period" and "YYYY-MM" in rejected.value.reason


def test_a_snowplow_structured_events_label_is_the_period() -> None:
    payload = {"e": "se", "eid": "e-1", "duid": "d-1", "se_ac": "Campaign Spend",
               "se_la": "2026-04-01/2026-04-15", "se_pr": "display", "se_va": "250",
               "co": '{"data": [{"schema": "iglu:com.abm/account/jsonschema/1-0-0",'
                     ' "data": {"groupId": "acme.com"}}]}'}  # fmt: skip
    event = to_event(to_segment(payload), RECEIVED, lambda _: None)
    assert event is not None and event.type == "campaign_spent"
    assert (event.period_start, event.period_end, event.amount) == (
        date(2026, 4, 1),
        date(2026, 4, 15),
        250.0,
    )


def test_a_native_items_period_becomes_its_dates() -> None:
    item = {"type": "campaign_spent", "event_id": "s-1", "occurred_at": "2026-05-01T11:00:00Z",
            "account": "acme.com", "channel": "display", "amount": 100,
            "period": "2026-04-15"}  # fmt: skip
    event = native_event(item, RECEIVED, 32768)
    assert event.type == "campaign_spent"
    assert (event.period_start, event.period_end) == (date(2026, 4, 15), date(2026, 4, 15))
