"""Pure pieces of the API: rate limiting, ETag matching, cursors."""

from __future__ import annotations

import pytest

from services.api.cursors import decode_cursor, encode_cursor
from services.api.errors import BadRequest
from services.api.etag import matches, strong_etag
from services.api.listing import keyset, selected_fields
from services.api.ratelimit import RateLimiter


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
