"""Account identification: order of evidence, provenance and confidence on every event,
company IP ranges last, and what is kept of IP addresses (pure, no broker)."""

from __future__ import annotations

import json
import logging
import sys
from datetime import UTC, datetime
from ipaddress import ip_network
from typing import Any

import pytest
from prometheus_client import REGISTRY
from pydantic import ValidationError

from services.ingest.client_address import client_address
from services.ingest.collect import collect
from services.ingest.identity import Resolution, VisitorAccounts, resolve_account
from services.ingest.ip_privacy import apply_ip_policy, scrub_message
from services.ingest.ip_ranges import IpRangeTable
from services.ingest.segment import Received, to_event
from services.ingest.settings import IngestSettings
from services.ingest.snowplow import to_segment
from services.kit.ip_ranges import RangeRow
from services.kit.logging import JsonFormatter, RedactingFilter, RedactingFormatter

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
RANGES = IpRangeTable(
    [
        RangeRow("203.0.113.0/24", "acme.com", 0.75),
        RangeRow("198.51.100.0/24", "globex.com"),  # no confidence of its own: 0.6
        RangeRow("2001:db8:ac::/48", "acme.com", 0.7),
    ]
)


def known(visitors: dict[str, str]) -> Any:
    return visitors.get


def page(**fields: Any) -> dict[str, Any]:
    base = {"type": "page", "messageId": "m-1", "anonymousId": "v1"}
    return {**base, "timestamp": "2026-05-01T11:00:00Z", "properties": {"url": "/x"}, **fields}


def test_each_kind_of_evidence_has_its_provenance_and_confidence() -> None:
    """Strongest first; removing each piece of evidence lets the next one decide."""
    everything: dict[str, Any] = {
        "type": "identify",
        "anonymousId": "v1",
        "context": {"groupId": "named.com"},
        "traits": {"email": "jo@work.io"},
    }
    context = {"groupId": "named.com", "ip": "203.0.113.9"}
    memory = known({"v1": "remembered.com"})
    steps: list[tuple[dict[str, Any], dict[str, Any], Resolution]] = [
        (everything, context, Resolution("named.com", "group_id", 1.0)),
        ({**everything, "context": {}}, {"ip": "203.0.113.9"},
         Resolution("work.io", "email_domain", 0.9)),
        ({**everything, "context": {}, "traits": {"email": "jo@gmail.com"}}, {"ip": "203.0.113.9"},
         Resolution("remembered.com", "visitor", 0.8)),
        ({"type": "page", "anonymousId": "v2"}, {"ip": "203.0.113.9"},
         Resolution("acme.com", "ip_range", 0.75)),
        ({"type": "page", "anonymousId": "v2"}, {"ip": "198.51.100.200"},
         Resolution("globex.com", "ip_range", 0.6)),
        ({"type": "page", "anonymousId": "v2"}, {"ip": "2001:db8:ac:99::1"},
         Resolution("acme.com", "ip_range", 0.7)),
        ({"type": "page", "anonymousId": "v2"}, {"ip": "192.0.2.1"}, Resolution(None)),
        ({"type": "page", "anonymousId": "v2"}, {"ip": "not an ip"}, Resolution(None)),
        ({"type": "page", "anonymousId": "v2"}, {}, Resolution(None, None, None)),
    ]  # fmt: skip
    for message, ctx, expected in steps:
        assert resolve_account(message, ctx, memory, RANGES.lookup) == expected, message


OURS = frozenset({"vendor.example"})


@pytest.mark.parametrize(
    ("attendees", "account"),
    [
        (["ae@vendor.example", "jo@initech.io", "kim@Initech.io"], "initech.io"),
        (["jo@initech.io", "friend@gmail.com", 42, None, "not an email"], "initech.io"),
        (["ae@vendor.example", "jo@initech.io", "pat@partner.io"], None),  # two companies
        (["ae@vendor.example", "se@vendor.example"], None),  # an internal meeting
        (["friend@gmail.com"], None),
        ("jo@initech.io", None),  # not a list
        ([], None),
    ],
)
def test_a_meeting_names_the_one_company_among_its_attendees(
    attendees: Any, account: str | None
) -> None:
    meeting = {"type": "track", "event": "Meeting Held", "properties": {"attendees": attendees}}
    resolution = resolve_account(meeting, {}, known({}), own_domains=OURS)
    assert resolution.account == account
    if account is not None:
        assert (resolution.provenance, resolution.confidence) == ("email_domain", 0.9)


def test_a_meetings_attendees_come_after_a_named_account_and_an_email() -> None:
    attendees = {"attendees": ["jo@initech.io"]}
    named = {"type": "track", "context": {"groupId": "acme.com"}, "properties": attendees}
    emailed = {"type": "track", "properties": {**attendees, "contact_email": "al@globex.com"}}
    assert resolve_account(named, named["context"], known({})).account == "acme.com"
    assert resolve_account(emailed, {}, known({})).account == "globex.com"


def test_meeting_held_reaches_its_account_through_the_segment_mapping() -> None:
    received = Received(at=NOW, source="calendar", own_domains=OURS)
    message = {"type": "track", "event": "Meeting Held", "messageId": "mh-1", "userId": "ae-1",
               "timestamp": "2026-05-01T11:00:00Z",
               "properties": {"attendees": ["ae@vendor.example", "jo@initech.io"]}}  # fmt: skip
    event = to_event(message, received, known({}))
    assert event is not None and event.type == "meeting_held"
    assert (event.account, event.account_provenance) == ("initech.io", "email_domain")
    # The sender (our account executive's user id) is not remembered as initech.io.
    visitors = VisitorAccounts()
    collected = collect([message], received, visitors, 32768)
    assert [e.account for e in collected.events] == ["initech.io"]
    assert visitors.get("ae-1") is None


def test_our_own_domains_setting_is_normalised() -> None:
    settings = IngestSettings(ingest_own_domains=frozenset({"www.Vendor.example", "vendor.io"}))
    assert settings.ingest_own_domains == {"vendor.example", "vendor.io"}
    with pytest.raises(ValidationError):
        IngestSettings(ingest_own_domains=frozenset({"not a domain"}))


def test_without_a_range_table_an_ip_names_nothing() -> None:
    assert resolve_account({"type": "page"}, {"ip": "203.0.113.9"}, known({})) == Resolution(None)


def test_events_carry_provenance_and_confidence_and_none_without_an_account() -> None:
    received = Received(at=NOW, source="web")
    named = to_event(page(context={"groupId": "Acme.com"}), received, known({}), RANGES.lookup)
    by_ip = to_event(page(context={"ip": "203.0.113.9"}), received, known({}), RANGES.lookup)
    unknown = to_event(page(context={"ip": "192.0.2.1"}), received, known({}), RANGES.lookup)
    assert named is not None and by_ip is not None and unknown is not None
    assert (named.account, named.account_provenance, named.account_confidence) == (
        "acme.com", "group_id", 1.0)  # fmt: skip
    assert (by_ip.account, by_ip.account_provenance, by_ip.account_confidence) == (
        "acme.com", "ip_range", 0.75)  # fmt: skip
    assert (unknown.account, unknown.account_provenance, unknown.account_confidence) == (
        None, None, None)  # fmt: skip


def test_the_request_address_counts_unless_the_message_names_its_own_ip() -> None:
    received = Received(at=NOW, source="pixel", context={"ip": "198.51.100.4"})
    from_request = to_event(page(), received, known({}), RANGES.lookup)
    from_message = to_event(page(context={"ip": "203.0.113.9"}), received, known({}), RANGES.lookup)
    assert from_request is not None and from_request.account == "globex.com"
    assert from_message is not None and from_message.account == "acme.com"


def test_snowplow_ip_parameter_is_looked_up() -> None:
    payload = {"e": "pv", "eid": "e-1", "duid": "d-1", "url": "https://x.io/", "ip": "203.0.113.1"}
    event = to_event(to_segment(payload), Received(at=NOW, source="sp"), known({}), RANGES.lookup)
    assert event is not None and (event.account, event.account_provenance) == (
        "acme.com",
        "ip_range",
    )


def test_an_ip_range_match_is_not_remembered_as_the_visitor() -> None:
    """The same visitor at home next time is not at the office: no ``visitor`` evidence."""
    visitors = VisitorAccounts()
    received = Received(at=NOW, source="web")
    at_office = page(context={"ip": "203.0.113.9"})
    at_home = page(messageId="m-2", context={"ip": "192.0.2.1"})
    result = collect([at_office, at_home], received, visitors, 32 * 1024, ranges=RANGES.lookup)
    assert [(e.account, e.account_provenance) for e in result.events] == [
        ("acme.com", "ip_range"),
        (None, None),
    ]
    identified = page(messageId="m-3", context={"groupId": "initech.io"})
    later = page(messageId="m-4", context={"ip": "203.0.113.9"})
    result = collect([identified, later], received, visitors, 32 * 1024, ranges=RANGES.lookup)
    assert [(e.account, e.account_provenance, e.account_confidence) for e in result.events] == [
        ("initech.io", "group_id", 1.0),
        ("initech.io", "visitor", 0.8),  # the visitor's identification beats the IP range
    ]


def group(**fields: Any) -> dict[str, Any]:
    """A group call from visitor v1, whose context and email say acme.com."""
    base = {"type": "group", "messageId": "g-1", "anonymousId": "v1",
            "context": {"groupId": "acme.com", "ip": "203.0.113.9"}}  # fmt: skip
    return {**base, "timestamp": "2026-05-01T11:00:00Z", **fields}


def test_a_group_call_naming_no_domain_is_rejected_not_given_the_visitors_account() -> None:
    """A CRM id in groupId: the traits describe Globex, whatever the visitor is known as."""
    visitors = VisitorAccounts()
    visitors.remember("v1", "acme.com")
    crm = group(groupId="0015g00000ABC", traits={"name": "Globex", "email": "ann@acme.com"})
    result = collect(
        [crm], Received(at=NOW, source="crm"), visitors, 32 * 1024, None, RANGES.lookup
    )
    assert result.events == []
    [rejection] = result.rejected
    assert rejection["field"] == "groupId"
    assert "traits.domain/website" in rejection["reason"]
    assert len(result.dead) == 1 and visitors.get("v1") == "acme.com"


@pytest.mark.parametrize(
    ("group_id", "traits", "account"),
    [
        ("Globex.com", {"domain": "initech.io"}, "globex.com"),  # groupId first
        ("https://globex.com/", {}, "globex.com"),
        ("0015g00000ABC", {"domain": "Globex.com", "website": "initech.io"}, "globex.com"),
        ("0015g00000ABC", {"website": "https://www.globex.com/about?utm=x"}, "globex.com"),
        ("0015g00000ABC", {"website": "globex.com:443"}, "globex.com"),
        (None, {"domain": "not a domain", "website": "HTTP://Globex.com"}, "globex.com"),
    ],
)
def test_a_group_call_names_its_account_by_group_id_else_its_domain_or_website(
    group_id: str | None, traits: dict[str, Any], account: str
) -> None:
    message = group(groupId=group_id, traits={"name": "Globex", **traits})
    event = to_event(message, Received(at=NOW, source="crm"), known({"v1": "acme.com"}))
    assert event is not None
    assert (event.type, event.account, event.account_provenance, getattr(event, "name", None)) == (
        "account_upserted",
        account,
        "group_id",
        "Globex",
    )


def test_resolutions_are_counted_by_provenance() -> None:
    def count(provenance: str) -> float:
        name = "abm_ingest_account_resolutions_total"
        return REGISTRY.get_sample_value(name, {"provenance": provenance}) or 0.0

    before = {p: count(p) for p in ("ip_range", "group_id", "none")}
    messages = [
        page(messageId="a", context={"ip": "203.0.113.9"}),
        page(messageId="b", anonymousId="v7", context={"ip": "203.0.113.10"}),
        page(messageId="c", anonymousId="v8", context={"groupId": "x.io"}),
        page(messageId="d", anonymousId="v9"),
    ]
    collect(messages, Received(at=NOW, source="web"), VisitorAccounts(), 32 * 1024,
            ranges=RANGES.lookup)  # fmt: skip
    assert {p: count(p) - before[p] for p in before} == {"ip_range": 2, "group_id": 1, "none": 1}


# --- what is kept of IP addresses -------------------------------------------------------


@pytest.mark.parametrize(
    ("address", "policy", "kept"),
    [
        ("203.0.113.77", "keep", "203.0.113.77"),
        ("203.0.113.77", "truncate", "203.0.113.0"),
        ("203.0.113.77", "drop", None),
        ("2001:db8:1234:5678:9abc::1", "truncate", "2001:db8:1234::"),
        ("2001:db8:1234:ffff::1", "truncate", "2001:db8:1234::"),
        ("::ffff:203.0.113.77", "truncate", "203.0.113.0"),
        ("fe80::1%eth0", "truncate", "fe80::"),
        ("not an ip", "truncate", None),
        (42, "truncate", None),
    ],
)
def test_ip_policies(address: Any, policy: Any, kept: str | None) -> None:
    assert apply_ip_policy(address, policy) == kept


def test_raw_messages_keep_truncate_or_drop_their_ips() -> None:
    raw = {"messageId": "m", "ip": "198.51.100.9", "context": {"ip": "203.0.113.77", "x": 1}}
    assert scrub_message(raw, "keep") == raw
    truncated = {"messageId": "m", "ip": "198.51.100.0", "context": {"ip": "203.0.113.0", "x": 1}}
    assert scrub_message(raw, "truncate") == truncated
    assert scrub_message(raw, "drop") == {"messageId": "m", "context": {"x": 1}}
    assert raw["context"] == {"ip": "203.0.113.77", "x": 1}  # the input is left alone
    assert scrub_message("junk", "drop") == "junk"


@pytest.mark.parametrize(
    ("policy", "dead_context"),
    [
        ("truncate", {"ip": "203.0.113.0"}),
        ("drop", {}),
        ("keep", {"ip": "203.0.113.77"}),
    ],
)
def test_dead_letter_copies_follow_the_source_policy(policy: Any, dead_context: Any) -> None:
    bad = page(messageId="bad", timestamp="yesterday", context={"ip": "203.0.113.77"})
    received = Received(at=NOW, source="web", ip_policy=policy)
    result = collect([bad], received, VisitorAccounts(), 32 * 1024, ranges=RANGES.lookup)
    [(raw, _reason, _source)] = result.dead
    assert json.loads(raw)["context"] == dead_context


# --- where the visitor's address comes from ----------------------------------------------

PROXIES = [ip_network("10.0.0.0/8"), ip_network("fd00::/8")]


@pytest.mark.parametrize(
    ("peer", "forwarded", "expected"),
    [
        ("203.0.113.7", None, "203.0.113.7"),
        ("203.0.113.7", "198.51.100.1", "203.0.113.7"),  # not from a trusted proxy: ignored
        ("10.1.1.1", "198.51.100.1", "198.51.100.1"),
        ("10.1.1.1", "6.6.6.6, 198.51.100.1, 10.2.2.2", "198.51.100.1"),  # nearest untrusted
        ("10.1.1.1", "10.3.3.3, 10.2.2.2", "10.3.3.3"),  # all ours: the origin
        ("fd00::5", "2001:db8::9", "2001:db8::9"),
        ("10.1.1.1", "garbage, 198.51.100.1", "198.51.100.1"),
        ("10.1.1.1", "198.51.100.1, garbage", None),
        ("10.1.1.1", None, "10.1.1.1"),
        (None, "198.51.100.1", None),
        ("testclient", None, None),
    ],
)
def test_client_address(peer: str | None, forwarded: str | None, expected: str | None) -> None:
    assert client_address(peer, forwarded, PROXIES) == expected


# --- logs -------------------------------------------------------------------------------------


def _record(message: str, *args: Any, **extra: Any) -> logging.LogRecord:
    record = logging.LogRecord("ingest", logging.WARNING, __file__, 1, message, args, None)
    record.__dict__.update(extra)
    RedactingFilter().filter(record)
    return record


def test_logs_never_hold_raw_ips_or_emails_even_in_nested_extra_fields() -> None:
    record = _record(
        "hit from %s by %s",
        "203.0.113.77",
        "jo@acme.com",
        context={"ip": "2001:db8::1", "hops": ["198.51.100.1"], "count": 3},
    )
    line = JsonFormatter().format(record)
    for secret in ("203.0.113.77", "jo@acme.com", "2001:db8::1", "198.51.100.1"):
        assert secret not in line
    assert json.loads(line)["context"] == {"ip": "<ip>", "hops": ["<ip>"], "count": 3}


def _fail() -> None:
    raise ValueError("bad visitor 203.0.113.77 <jo@acme.com>")


def test_plain_text_tracebacks_are_masked_too() -> None:
    try:
        _fail()
    except ValueError:
        record = logging.LogRecord("x", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    text = RedactingFormatter("%(message)s").format(record)
    assert "203.0.113.77" not in text and "jo@acme.com" not in text and "<ip>" in text
