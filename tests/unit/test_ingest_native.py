"""Our own schemas through POST /v1/events: validation, clock skew, provenance (pure)."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from services.ingest import openapi_docs
from services.ingest.errors import RejectedMessage
from services.ingest.identity import VisitorAccounts
from services.ingest.native import collect_native, native_event
from services.ingest.segment import Received

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)


def received(sent_at: datetime | None = None) -> Received:
    return Received(at=NOW, source="crm", sent_at=sent_at)


def won(**fields: Any) -> dict[str, Any]:
    return {
        "type": "opportunity_won",
        "event_id": "opp-1-won",
        "occurred_at": "2026-05-01T11:00:00Z",
        "account": "Acme.com",
        "opportunity_id": "1",
        "amount": 1000,
        **fields,
    }


def test_an_item_becomes_our_event_with_server_set_fields() -> None:
    event = native_event(
        won(source="spoofed", received_at="2020-01-01T00:00:00Z", account_confidence=0.1),
        received(),
        32 * 1024,
    )
    assert event.type == "opportunity_won"
    assert (event.event_id, event.account, event.source) == ("opp-1-won", "acme.com", "crm")
    assert event.received_at == NOW
    assert event.occurred_at == datetime(2026, 5, 1, 11, tzinfo=UTC)
    assert (event.account_provenance, event.account_confidence) == ("group_id", 1.0)


def test_clock_skew_is_corrected_with_sent_at_and_future_times_clamped() -> None:
    # The sender's clock runs 10 minutes fast: sent at 12:10 by it, received at 12:00.
    sent_at = datetime(2026, 5, 1, 12, 10, tzinfo=UTC)
    skewed = native_event(won(occurred_at="2026-05-01T12:05:00Z"), received(sent_at), 32768)
    assert skewed.occurred_at == datetime(2026, 5, 1, 11, 55, tzinfo=UTC)
    future = native_event(won(occurred_at="2026-05-01T13:00:00Z"), received(), 32768)
    assert future.occurred_at == NOW


def test_the_senders_raw_occurred_at_and_sent_at_are_kept_not_taken_from_the_item() -> None:
    # The sender's clock is an hour ahead: it stamped 12:55 and sent at 13:00 (our 12:00).
    sent_at = datetime(2026, 5, 1, 13, tzinfo=UTC)
    spoofed = {
        "client_occurred_at": "2020-01-01T00:00:00Z",
        "client_sent_at": "2020-01-01T00:00:00Z",
    }
    event = native_event(
        won(occurred_at="2026-05-01T12:55:00Z", **spoofed), received(sent_at), 32768
    )
    assert event.occurred_at == datetime(2026, 5, 1, 11, 55, tzinfo=UTC)
    assert event.client_occurred_at == datetime(2026, 5, 1, 12, 55, tzinfo=UTC)
    assert event.client_sent_at == sent_at
    unsent = native_event(won(), received(), 32768)
    assert (unsent.client_occurred_at, unsent.client_sent_at) == (unsent.occurred_at, None)


def test_a_contacts_user_id_names_the_account_of_later_items_with_that_user_id() -> None:
    visitors = VisitorAccounts()
    at = "2026-05-01T11:00:00Z"
    contact = {"type": "contact_identified", "event_id": "c1", "occurred_at": at,
               "contact_email": "jo@initech.io", "user_id": "u7"}  # fmt: skip
    form = {"type": "form_submitted", "event_id": "f1", "occurred_at": at, "user_id": "u7"}
    collected = collect_native([contact, form], received(), visitors, 32768)
    assert [(e.account, e.account_provenance) for e in collected.events] == [
        ("initech.io", "email_domain"),
        ("initech.io", "visitor"),
    ]


def test_a_work_email_names_the_account_when_the_sender_does_not() -> None:
    nps = {"type": "nps_submitted", "event_id": "n1", "occurred_at": "2026-05-01T11:00:00Z",
           "score": 9, "contact_email": "jo@Initech.io"}  # fmt: skip
    event = native_event(nps, received(), 32768)
    assert (event.account, event.account_provenance, event.account_confidence) == (
        "initech.io",
        "email_domain",
        0.9,
    )
    free = native_event({**nps, "contact_email": "jo@gmail.com"}, received(), 32768)
    assert (free.account, free.account_provenance) == (None, None)


def test_a_meetings_one_company_among_its_attendees_names_the_account() -> None:
    meeting = {"type": "meeting_held", "event_id": "m1", "occurred_at": "2026-05-01T11:00:00Z",
               "attendees": ["ae@vendor.example", "jo@Initech.io", "kim@initech.io",
                             "friend@gmail.com"]}  # fmt: skip
    ours = Received(at=NOW, source="calendar", own_domains=frozenset({"vendor.example"}))
    event = native_event(meeting, ours, 32768)
    assert (event.account, event.account_provenance) == ("initech.io", "email_domain")
    # Without knowing our domain, two companies attend: which one it was for is a guess.
    assert native_event(meeting, received(), 32768).account is None
    named = native_event({**meeting, "account": "globex.com"}, ours, 32768)
    assert (named.account, named.account_provenance) == ("globex.com", "group_id")


def test_an_earlier_identification_of_the_visitor_names_the_account_last() -> None:
    visitors = VisitorAccounts()
    form = {"type": "form_submitted", "event_id": "f1", "occurred_at": "2026-05-01T11:00:00Z",
            "anonymous_id": "v7"}  # fmt: skip
    named = {**form, "event_id": "f0", "account": "globex.com"}
    collected = collect_native([named, form], received(), visitors, 32768)
    assert [(e.account, e.account_provenance, e.account_confidence) for e in collected.events] == [
        ("globex.com", "group_id", 1.0),
        ("globex.com", "visitor", 0.8),
    ]


@pytest.mark.parametrize(
    ("item", "field"),
    [
        ([1, 2], "event"),
        (won(event_id=""), "event_id"),
        ({k: v for k, v in won().items() if k != "event_id"}, "event_id"),
        (won(occurred_at=None), "occurred_at"),
        (won(occurred_at="yesterday"), "occurred_at"),
        (won(occurred_at="2026-05-01T11:00:00"), "occurred_at"),  # no time zone
        (won(type="stage_changed"), "type"),  # derived events are ours to emit
        ({k: v for k, v in won().items() if k != "type"}, "type"),
        (won(amount=-5), "amount"),
        (won(opportunity_id=None), "opportunity_id"),
        (won(account="not a domain"), "account"),
        (won(padding="x" * 40_000), "event"),
    ],
)
def test_a_bad_item_is_rejected_naming_its_field(item: Any, field: str) -> None:
    with pytest.raises(RejectedMessage) as rejected:
        native_event(item, received(), 32 * 1024)
    assert rejected.value.field == field


def test_a_batch_keeps_good_items_rejects_bad_ones_and_drops_repeated_ids() -> None:
    bad = won(event_id="bad", amount="lots")
    items = [won(), bad, won(), won(event_id="opp-2", anonymous_id="v9")]
    visitors = VisitorAccounts()
    collected = collect_native(items, received(), visitors, 32 * 1024)
    assert [e.event_id for e in collected.events] == ["opp-1-won", "opp-2"]
    assert collected.duplicates == 1
    assert collected.rejected == [
        {
            "index": 1,
            "messageId": "bad",
            "field": "amount",
            "reason": collected.rejected[0]["reason"],
        }
    ]
    [(raw, reason, source)] = collected.dead
    assert json.loads(raw) == bad
    assert reason.startswith("amount: ") and source == "crm"
    assert visitors.get("v9") == "acme.com"


def test_the_documented_example_is_accepted_whole() -> None:
    body = openapi_docs.NATIVE_EXAMPLE
    sent_at = datetime.fromisoformat(body["sent_at"])
    collected = collect_native(body["events"], received(sent_at), VisitorAccounts(), 32768)
    assert (len(collected.events), collected.rejected) == (2, [])


def test_the_spec_documents_every_item_without_the_server_set_fields() -> None:
    schema = openapi_docs.native_event_schema()
    variants = schema["oneOf"]
    assert len(variants) == 13  # one per inbound model of schemas/events.py
    for variant in variants:
        assert not set(variant["properties"]) & {"received_at", "source"}
        assert {"event_id", "occurred_at"} <= set(variant["required"])
        assert "$ref" not in json.dumps(variant)
