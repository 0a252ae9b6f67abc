"""Regressions found by fuzzing the ingest OpenAPI spec (tests/integration/test_ingest_fuzz)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from services.ingest.errors import RejectedMessage
from services.ingest.native import native_event
from services.ingest.segment import Received, event_time

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)
# The sender's clock claims year 5923: received - (sent - occurred) is before year 1.
FAR_FUTURE = datetime(5923, 4, 17, tzinfo=UTC)


def test_a_native_correction_beyond_the_calendar_is_a_rejection_not_a_500() -> None:
    item = {"type": "opportunity_won", "event_id": "w", "opportunity_id": "o",
            "occurred_at": "0003-06-14T15:11:06Z", "account": "acme.com"}  # fmt: skip
    with pytest.raises(RejectedMessage) as rejected:
        native_event(item, Received(at=NOW, source="crm", sent_at=FAR_FUTURE), 32768)
    assert rejected.value.field == "occurred_at"


def test_a_segment_correction_beyond_the_calendar_is_a_rejection_not_a_500() -> None:
    message = {"timestamp": "0003-06-14T15:11:06Z", "sentAt": "5923-04-17T00:00:00Z"}
    with pytest.raises(RejectedMessage) as rejected:
        event_time(message, Received(at=NOW, source="web"))
    assert rejected.value.field == "timestamp"
