"""Pure pieces of the API: rate limiting, ETag matching, cursors."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

import pytest

from services.api.cursors import decode_cursor, encode_cursor, time_and_id
from services.api.edge import to_utc
from services.api.errors import BadRequest
from services.api.etag import matches, strong_etag
from services.api.feed import position_of
from services.api.listing import keyset, selected_fields
from services.api.ratelimit import RateLimiter
from services.kit.changes import Position


def test_bucket_allows_a_burst_then_refills_at_the_rate() -> None:
    limiter = RateLimiter(per_minute=60, burst=3)
    decisions = [limiter.check("t", now=100.0) for _ in range(4)]
    assert [d.allowed for d in decisions] == [True, True, True, False]
    assert decisions[2].remaining == 0 and decisions[3].retry_after_s == 1
    assert decisions[3].headers()["Retry-After"] == "1"
    assert limiter.check("t", now=101.0).allowed  # one token per second
    assert not limiter.check("t", now=101.0).allowed
    assert limiter.check("other", now=101.0).allowed  # buckets are per token


def test_etags_are_strong_and_if_none_match_lists_are_understood() -> None:
    tag = strong_etag(b'{"a":1}')
    assert tag.startswith('"') and tag != strong_etag(b'{"a":2}')
    assert matches(f'"x", {tag}', tag) and matches("*", tag) and matches(f"W/{tag}", tag)
    assert not matches(None, tag) and not matches('"other"', tag)


def test_cursors_round_trip_and_refuse_foreign_or_forged_ones() -> None:
    cursor = encode_cursor({"k": "accounts:domain", "v": "a.com", "d": "a.com"})
    assert decode_cursor(cursor, kind="accounts:domain") == {
        "k": "accounts:domain",
        "v": "a.com",
        "d": "a.com",
    }
    with pytest.raises(BadRequest, match="another listing"):
        decode_cursor(cursor, kind="surges")
    for forged in (
        "!!!",
        "bm90IGpzb24",
        encode_cursor({"k": "accounts:fit_score", "v": "x", "d": "a.com"}),
    ):
        with pytest.raises(BadRequest):
            keyset("fit_score", forged)


def test_sort_and_fields_are_validated() -> None:
    assert keyset("-fit_score", None).descending
    with pytest.raises(BadRequest, match="unknown sort"):
        keyset("name", None)
    assert selected_fields("stage, tier") == {"stage", "tier", "domain"}
    with pytest.raises(BadRequest, match="unknown fields"):
        selected_fields("stage,password")


def test_webhook_backoff_doubles_up_to_a_cap() -> None:
    from services.api.webhooks.signing import retry_delay_s

    assert [retry_delay_s(n, 2.0, 30.0) for n in range(1, 7)] == [2, 4, 8, 16, 30, 30]


def test_funnel_figures_from_stage_moves_by_hand() -> None:
    from datetime import UTC, datetime, timedelta

    from services.api.funnel import stage_figures

    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    day = timedelta(days=1)
    moves = [  # (from, to, at, when the account moved on next)
        (None, "target", t0, t0 + 2 * day),
        ("target", "engaged", t0 + 2 * day, t0 + 3 * day),
        ("engaged", "target", t0 + 3 * day, None),  # lapsed: a regression, still in target
        (None, "target", t0, t0 + 4 * day),
        ("target", "engaged", t0 + 4 * day, None),
    ]
    figures = {f.stage: f for f in stage_figures({"target": 1, "engaged": 1}, {0: 1, 1: 1}, moves)}
    target, engaged = figures["target"], figures["engaged"]
    assert (target.entered, engaged.entered) == (3, 2)
    assert target.median_days_in_stage == 3.0  # 2 and 4 days; the open stay is not counted
    assert engaged.median_days_in_stage == 1.0 and engaged.regressions == 1
    assert engaged.entered_conversion_from_previous == 2 / 3
    assert (target.reached, engaged.reached, engaged.conversion_from_previous) == (2, 1, 0.5)
    assert figures["won"].entered == 0 and figures["won"].median_days_in_stage is None


@pytest.mark.parametrize(
    ("sort", "value", "domain"),
    [
        ("domain", [1], "a.com"),  # not text: the database would be asked to compare a list
        ("domain", "a\x00.com", "a.com"),  # PostgreSQL text holds no NUL
        ("domain", "a.com", "a\x00.com"),
        ("domain", "a.com", None),
        ("domain", "a.com", "a" * 254),
        ("fit_score", "50", "a.com"),
        ("fit_score", True, "a.com"),
        ("fit_score", 10**400, "a.com"),  # float() overflows
        ("-fit_score", float("nan"), "a.com"),
        ("-fit_score", float("inf"), "a.com"),
        ("updated_at", 12, "a.com"),
        ("updated_at", "2026-04-01T00:00:00", "a.com"),  # no zone
        ("-updated_at", "0001-01-01T00:00:00+01:00", "a.com"),  # before UTC's year 1
        ("-updated_at", "9999-12-31T23:59:59-01:00", "a.com"),  # after UTC's year 9999
    ],
)
def test_account_cursors_hold_values_of_their_sort_keys_type(
    sort: str, value: Any, domain: Any
) -> None:
    cursor = encode_cursor({"k": f"accounts:{sort}", "v": value, "d": domain})
    with pytest.raises(BadRequest) as refused:
        keyset(sort, cursor)
    assert refused.value.field == "cursor"


def test_account_cursors_the_api_writes_are_read_back_typed() -> None:
    moment = datetime(2026, 4, 1, 2, tzinfo=timezone(timedelta(hours=2)))
    cursor = encode_cursor({"k": "accounts:-updated_at", "v": moment.isoformat(), "d": "a.com"})
    after = keyset("-updated_at", cursor).after
    assert after == (moment, "a.com") and after[0].tzinfo == UTC
    cursor = encode_cursor({"k": "accounts:fit_score", "v": 42, "d": "a.com"})
    assert keyset("fit_score", cursor).after == (42.0, "a.com")


@pytest.mark.parametrize(
    ("txid", "seq"),
    [(0, 10**30), (2**63, 1), (-1, 1), (True, 1), (0, 1.5), (0, "7"), (None, 1)],
)
def test_change_cursors_hold_64_bit_positions(txid: Any, seq: Any) -> None:
    cursor = encode_cursor({"k": "changes", "x": txid, "s": seq})
    with pytest.raises(BadRequest) as refused:
        position_of(cursor, field="Last-Event-ID")
    assert refused.value.field == "Last-Event-ID"


def test_change_cursors_up_to_the_largest_bigint_are_read() -> None:
    cursor = encode_cursor({"k": "changes", "x": 2**63 - 1, "s": 0})
    assert position_of(cursor, field="cursor") == Position(2**63 - 1, 0)


@pytest.mark.parametrize(
    "position",
    [
        {"t": "0001-01-01T00:00:00+01:00", "e": "e1"},
        {"t": "2026-04-01T00:00:00", "e": "e1"},
        {"t": 1, "e": "e1"},
        {"t": "2026-04-01T00:00:00Z", "e": "e\x00"},
        {"t": "2026-04-01T00:00:00Z", "e": 5},
        {"t": "2026-04-01T00:00:00Z", "e": "e" * 129},
        {"e": "e1"},
    ],
)
def test_time_ordered_cursors_hold_utc_instants_and_event_ids(position: dict[str, Any]) -> None:
    with pytest.raises(BadRequest):
        time_and_id(position)


def test_instants_must_name_a_zone_and_convert_to_utc() -> None:
    assert to_utc(datetime(1, 1, 1, tzinfo=UTC), "from") == datetime(1, 1, 1, tzinfo=UTC)
    plus_one = timezone(timedelta(hours=1))
    assert to_utc(datetime(2026, 1, 1, 1, tzinfo=plus_one), "from") == datetime(
        2026, 1, 1, tzinfo=UTC
    )
    naive = datetime.fromisoformat("2026-01-01T00:00:00")
    for moment in (datetime(1, 1, 1, tzinfo=plus_one), naive):
        with pytest.raises(BadRequest) as refused:
            to_utc(moment, "from")
        assert refused.value.field == "from"


def test_funnel_kpi_days_are_the_utc_days_of_the_half_open_window() -> None:
    from services.api.funnel import kpi_days
    from services.api.kpi_queries import Period

    def at(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
        return datetime(year, month, day, hour, minute, tzinfo=UTC)

    # [1 April 00:00, 2 April 00:00) is 1 April only, not 1 and 2 April.
    assert kpi_days(at(2026, 4, 1), at(2026, 4, 2)) == Period(date(2026, 4, 1), date(2026, 4, 1))
    # An end within a day takes that (partly covered) day whole; a start its own day.
    assert kpi_days(at(2026, 4, 1, 23), at(2026, 4, 2, 0, 1)) == Period(
        date(2026, 4, 1), date(2026, 4, 2)
    )
    assert kpi_days(None, at(2026, 4, 2)) == Period(None, date(2026, 4, 1))
    assert kpi_days(at(2026, 4, 1), None) == Period(date(2026, 4, 1), None)
    assert kpi_days(None, at(9999, 12, 31, 23, 59)) == Period(None, date.max)
    with pytest.raises(BadRequest, match="after 0001-01-01") as refused:
        kpi_days(None, at(1, 1, 1))
    assert refused.value.field == "to"
