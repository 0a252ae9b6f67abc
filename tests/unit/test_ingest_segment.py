"""Segment messages -> our events: mapping, identification, clock skew (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ingest.collect import collect
from services.ingest.errors import RejectedMessage, reject_oversized
from services.ingest.identity import VisitorAccounts, domain_of_email
from services.ingest.segment import Received, event_time, to_event

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
RECEIVED = Received(at=NOW, source="website")


def nobody(_visitor: str) -> str | None:
    return None


def msg(kind: str, **fields: Any) -> dict[str, Any]:
    return {"type": kind, "messageId": "m-1", "timestamp": "2026-05-01T11:00:00Z", **fields}


def test_group_call_becomes_account_upserted_with_firmographics() -> None:
    event = to_event(
        msg("group", groupId="Acme.com", traits={"name": "Acme", "employees": 900,
            "annualRevenue": 2e7, "technologies": ["hubspot"], "target": True}),
        RECEIVED, nobody,
    )  # fmt: skip
    assert event is not None and event.type == "account_upserted"
    assert (event.account, event.name, event.employees, event.annual_revenue, event.target) == (
        "acme.com",
        "Acme",
        900,
        2e7,
        True,
    )


def test_group_trait_maturity_maps_onto_the_event_lower_cased() -> None:
    event = to_event(
        msg("group", groupId="acme.com", traits={"maturity": " Growth ", "funding": "Seed"}),
        RECEIVED,
        nobody,
    )
    assert event is not None and event.type == "account_upserted"
    assert (event.maturity, event.funding) == ("growth", "Seed")
    bare = to_event(msg("group", groupId="acme.com", traits={"name": "Acme"}), RECEIVED, nobody)
    assert bare is not None and bare.type == "account_upserted" and bare.maturity is None


def test_identify_names_the_account_by_email_domain_but_never_free_mail() -> None:
    work = to_event(
        msg("identify", anonymousId="a1", traits={"email": "jo@Initech.io"}), RECEIVED, nobody
    )
    free = to_event(
        msg("identify", anonymousId="a2", traits={"email": "jo@gmail.com"}), RECEIVED, nobody
    )
    assert work is not None and work.type == "contact_identified" and work.account == "initech.io"
    assert free is not None and free.account is None
    assert domain_of_email("x@yahoo.com") is None


@pytest.mark.parametrize(
    ("name", "properties", "expected"),
    [
        ("Ad Impression", {"campaign_id": "c"}, "ad_impressed"),
        ("Ad Clicked", {"campaign_id": "c", "channel": "email_signature"}, "ad_clicked"),
        ("Email Replied", {"direction": "inbound"}, "email_replied"),
        ("Opportunity Won", {"opportunity_id": "o", "amount": 10}, "opportunity_won"),
        ("Subscription Renewed", {"amount": 5, "term_end": "2027-01-01"}, "subscription_renewed"),
        ("NPS Submitted", {"score": 9}, "nps_submitted"),
        (
            "Intent Signal",
            {"topic": "crm", "score": 70, "source": "bombora"},
            "intent_signal_received",
        ),
        ("Campaign Spend", {"channel": "display", "amount": 100}, "campaign_spent"),
    ],
)
def test_track_events_map_onto_our_vocabulary(
    name: str, properties: dict[str, Any], expected: str
) -> None:
    message = msg("track", event=name, properties=properties, context={"groupId": "acme.com"})
    event = to_event(message, RECEIVED, nobody)
    assert event is not None and event.type == expected and event.account == "acme.com"


def test_custom_track_events_are_ignored_not_rejected() -> None:
    assert to_event(msg("track", event="Video Played"), RECEIVED, nobody) is None


def test_bad_fields_name_the_field_and_reason() -> None:
    with pytest.raises(RejectedMessage) as caught:
        to_event(msg("track", event="NPS Submitted", properties={"score": 11},
                     context={"groupId": "acme.com"}), RECEIVED, nobody)  # fmt: skip
    assert caught.value.field == "score"
    with pytest.raises(RejectedMessage, match="messageId"):
        to_event({"type": "page"}, RECEIVED, nobody)
    with pytest.raises(RejectedMessage, match="type"):
        to_event(msg("screen-ish"), RECEIVED, nobody)


def test_clock_skew_is_corrected_and_future_clamped() -> None:
    # The sender's clock is 10 minutes fast: it says sent at 12:10 for an event at 12:05.
    skewed = {"timestamp": "2026-05-01T12:05:00Z", "sentAt": "2026-05-01T12:10:00Z"}
    assert event_time(skewed, RECEIVED) == NOW - timedelta(minutes=5)
    assert event_time({"timestamp": "2030-01-01T00:00:00Z"}, RECEIVED) == NOW
    assert event_time({}, RECEIVED) == NOW


def test_the_device_clock_is_original_timestamp_when_both_are_sent() -> None:
    """Segment's ``timestamp`` is then already corrected: correcting it again would skew."""
    # The device said 12:05 and sent at 12:10 (10 minutes fast); Segment corrected to 11:55.
    both = {
        "originalTimestamp": "2026-05-01T12:05:00Z",
        "timestamp": "2026-05-01T11:55:00Z",
        "sentAt": "2026-05-01T12:10:00Z",
    }
    assert event_time(both, RECEIVED) == NOW - timedelta(minutes=5)
    event = to_event(msg("page", properties={"url": "/"}, **both), RECEIVED, nobody)
    assert event is not None and event.occurred_at == NOW - timedelta(minutes=5)
    without_original = {k: v for k, v in both.items() if k != "originalTimestamp"}
    assert event_time(without_original, RECEIVED) == NOW - timedelta(minutes=15)
    with pytest.raises(RejectedMessage) as rejected:
        event_time({**both, "originalTimestamp": "yesterday"}, RECEIVED)
    assert rejected.value.field == "originalTimestamp"


def test_the_senders_raw_clock_values_are_kept_beside_the_corrected_time() -> None:
    # The device clock is an hour ahead: it stamped 12:55 and sent at 13:00 (our 12:00).
    ahead = {"originalTimestamp": "2026-05-01T12:55:00Z", "sentAt": "2026-05-01T13:00:00Z"}
    event = to_event(msg("page", properties={"url": "/"}, **ahead), RECEIVED, nobody)
    assert event is not None and event.occurred_at == NOW - timedelta(minutes=5)
    assert event.client_occurred_at == datetime(2026, 5, 1, 12, 55, tzinfo=UTC)
    assert event.client_sent_at == datetime(2026, 5, 1, 13, tzinfo=UTC)
    # Without its own sentAt a message was sent with the batch: the batch's sentAt is kept.
    batch = Received(at=NOW, source="website", sent_at=datetime(2026, 5, 1, 13, tzinfo=UTC))
    batched = to_event(msg("page", properties={"url": "/"}), batch, nobody)
    assert batched is not None and batched.occurred_at == NOW - timedelta(hours=2)
    assert batched.client_occurred_at == datetime(2026, 5, 1, 11, tzinfo=UTC)
    assert batched.client_sent_at == batch.sent_at
    clockless = to_event({"type": "page", "messageId": "m-3"}, RECEIVED, nobody)
    assert clockless is not None and clockless.occurred_at == NOW
    assert (clockless.client_occurred_at, clockless.client_sent_at) == (None, None)


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(RejectedMessage, match="time zone"):
        event_time({"timestamp": "2026-05-01T12:00:00"}, RECEIVED)


def test_collect_rejects_one_message_not_the_batch_and_drops_repeated_ids() -> None:
    visitors = VisitorAccounts()
    good = msg("page", anonymousId="v9", context={"groupId": "acme.com"}, properties={"url": "/x"})
    bad = msg("track", event="NPS Submitted", properties={"score": "loud"}, messageId="m-2")
    result = collect([good, bad, good, "junk"], RECEIVED, visitors, 32 * 1024)
    assert len(result.events) == 1 and result.duplicates == 1
    assert [r["index"] for r in result.rejected] == [1, 3]
    assert all(reason for _, reason, _ in result.dead)


def test_a_visitor_identified_earlier_resolves_later_pages() -> None:
    visitors = VisitorAccounts()
    identify = msg("identify", anonymousId="v1", traits={"email": "ann@globex.com"})
    page = msg("page", anonymousId="v1", messageId="m-2", properties={"url": "/pricing"})
    result = collect([identify, page], RECEIVED, visitors, 32 * 1024)
    assert [e.account for e in result.events] == ["globex.com", "globex.com"]


def test_a_signed_in_users_id_resolves_later_calls_carrying_only_the_user_id() -> None:
    visitors = VisitorAccounts()
    identify = msg("identify", anonymousId="a1", userId="u1", traits={"email": "ann@globex.com"})
    page = msg("page", userId="u1", messageId="m-2", properties={"url": "/pricing"})
    result = collect([identify, page], RECEIVED, visitors, 32 * 1024)
    assert [(e.account, e.account_provenance) for e in result.events] == [
        ("globex.com", "email_domain"),
        ("globex.com", "visitor"),
    ]
    assert visitors.get("a1") == visitors.get("u1") == "globex.com"


def test_oversized_events_are_rejected() -> None:
    huge = msg("page", properties={"url": "/", "blob": "x" * 40_000})
    result = collect([huge], RECEIVED, VisitorAccounts(), 32 * 1024)
    assert result.rejected[0]["reason"].startswith("larger than")


def test_visitor_memory_is_bounded() -> None:
    visitors = VisitorAccounts(capacity=2)
    for i in range(3):
        visitors.remember(f"v{i}", "acme.com")
    assert visitors.get("v0") is None and visitors.get("v2") == "acme.com"


@pytest.mark.parametrize(
    ("agent", "bot"),
    [
        (
            "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 HeadlessChrome/120.0 Safari/537.36",
            True,
        ),
        ("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)", True),
        (
            "Mozilla/5.0 (Windows NT 10.0; Win64; x64) Chrome/120.0 Safari/537.36",
            False,
        ),
        ("", False),
    ],
)
def test_bots_are_tagged_not_dropped(agent: str, bot: bool) -> None:
    message = msg(
        "page", properties={"url": "/"}, context={"groupId": "acme.com", "userAgent": agent}
    )
    event = to_event(message, RECEIVED, nobody)
    assert event is not None and event.is_bot is bot


@pytest.mark.parametrize("blob", ["x" * 1000, "é" * 1000, "日本" * 300])
def test_the_event_size_limit_counts_compact_utf8_bytes(blob: str) -> None:
    message = msg("page", properties={"url": "/", "blob": blob})
    size = len(json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode())
    reject_oversized(message, size, "message")  # exactly at the limit: accepted
    with pytest.raises(RejectedMessage, match="message: larger than"):
        reject_oversized(message, size - 1, "message")


def test_a_message_nested_deeper_than_the_encoders_take_is_rejected_alone() -> None:
    deep: Any = "x"
    for _ in range(300):
        deep = [deep]
    nested = msg("page", messageId="m-deep", properties={"url": "/", "deep": deep})
    result = collect(
        [nested, msg("page", messageId="m-ok")], RECEIVED, VisitorAccounts(), 32 * 1024
    )
    assert [e.event_id for e in result.events] == ["m-ok"]
    assert (result.rejected[0]["field"], result.rejected[0]["reason"]) == (
        "message",
        "nested too deeply",
    )


@pytest.mark.parametrize(
    "email",
    [
        "ann@yahoo.fr",
        "ann@hotmail.fr",
        "ann@outlook.de",
        "ann@pm.me",
        "ann@protonmail.ch",
        "ann@naver.com",
        "ann@live.co.uk",
        "ann@Mail.RU",
    ],
)
def test_free_mail_beyond_the_big_few_names_no_account(email: str) -> None:
    """The audit found the first seven naming an account (at confidence 0.9) with the
    hand-kept list of 38; the last checks case."""
    assert domain_of_email(email) is None
