"""Logs carry no raw emails or IP addresses, and JSON lines keep ``extra=`` fields (the
event id that correlates an event from ingest to its effects)."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest

from services.kit.logging import JsonFormatter, RedactingFilter, configure_logging, redact


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("sent by jane.doe+abm@example.co.uk", "sent by <email>"),
        ("from 203.0.113.7:8080", "from <ip>:8080"),
        ("client ::1 and 2001:db8::ff00:42:8329", "client <ip> and <ip>"),
        ("link-local fe80::1%eth0", "link-local <ip>"),
        ("mapped ::ffff:192.0.2.1 ok", "mapped <ip> ok"),
    ],
)
def test_emails_and_addresses_are_masked(text: str, expected: str) -> None:
    assert redact(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        "at 12:30:45 on 2026-11-22T18:50:47+00:00",
        "abm.events.v1/3@1200 version 1.2.3 and 1.2.3.4.5",
        "event_id 9f1c2a event page_viewed account acme.com",
        "999.1.1.1 is not an address",
    ],
)
def test_times_offsets_versions_and_domains_are_left_alone(text: str) -> None:
    assert redact(text) == text


def record(message: str, *args: object, **extra: object) -> logging.LogRecord:
    made = logging.makeLogRecord({"msg": message, "args": args, "levelname": "INFO"})
    made.__dict__.update(extra)
    return made


def test_the_filter_masks_arguments_and_extra_fields() -> None:
    made = record("login by %s from %s", "a@b.io", "10.1.2.3", visitor="x@y.io", event_id="e1")
    assert RedactingFilter().filter(made)
    assert made.getMessage() == "login by <email> from <ip>"
    assert made.__dict__["visitor"] == "<email>"
    assert made.__dict__["event_id"] == "e1"


def test_json_lines_keep_the_correlation_id() -> None:
    made = record("applied %s", "page_viewed", event_id="evt-1", group="abm-funnel")
    RedactingFilter().filter(made)
    document = json.loads(JsonFormatter().format(made))
    assert document["msg"] == "applied page_viewed"
    assert (document["event_id"], document["group"]) == ("evt-1", "abm-funnel")


@pytest.fixture
def restored_logging() -> Iterator[None]:
    root, chatty = logging.getLogger(), [logging.getLogger(n) for n in ("aiokafka", "httpx")]
    saved = (root.handlers[:], root.level, [logger.level for logger in chatty])
    try:
        yield
    finally:
        root.handlers[:], root.level = saved[0], saved[1]
        for logger, level in zip(chatty, saved[2], strict=True):
            logger.setLevel(level)


@pytest.mark.usefixtures("restored_logging")
def test_clients_that_log_every_request_are_kept_to_warnings() -> None:
    configure_logging("INFO", as_json=False)
    assert logging.getLogger("services.api").isEnabledFor(logging.INFO)
    for chatty in ("httpx", "aiokafka"):
        assert not logging.getLogger(chatty).isEnabledFor(logging.INFO)
        assert logging.getLogger(chatty).isEnabledFor(logging.WARNING)
    configure_logging("ERROR", as_json=False)
    assert not logging.getLogger("httpx").isEnabledFor(logging.WARNING)
