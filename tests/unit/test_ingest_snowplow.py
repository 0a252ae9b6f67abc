"""Snowplow payloads -> Segment messages -> our events (pure, no broker)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.ingest.errors import RejectedMessage
from services.ingest.segment import Received, to_event
from services.ingest.snowplow import event_name, to_segment

NOW = datetime(2026, 5, 1, 12, 0, tzinfo=UTC)
RECEIVED = Received(at=NOW, source="snowplow-site")


def _ms(moment: datetime) -> str:
    return str(int(moment.timestamp() * 1000))


def _contexts(*entities: tuple[str, dict[str, Any]]) -> str:
    data = [{"schema": f"iglu:com.abm/{name}/jsonschema/1-0-0", "data": d} for name, d in entities]
    document = {
        "schema": "iglu:com.snowplowanalytics.snowplow/contexts/jsonschema/1-0-1",
        "data": data,
    }
    return base64.urlsafe_b64encode(json.dumps(document).encode()).decode().rstrip("=")


def _map(**payload: Any) -> Any:
    return to_event(to_segment({"eid": "e-1", "duid": "d-1", **payload}), RECEIVED, lambda _: None)


def test_page_view_with_account_context_and_clock_skew() -> None:
    device_now = NOW + timedelta(hours=1)  # the device clock is an hour ahead
    event = _map(
        e="pv",
        url="https://x.io/pricing",
        refr="https://g.co",
        page="Pricing",
        dtm=_ms(device_now - timedelta(minutes=5)),
        stm=_ms(device_now),
        cx=_contexts(("account", {"groupId": "Acme.com"})),
    )
    assert (event.type, event.url, event.referrer, event.title) == (
        "page_viewed",
        "https://x.io/pricing",
        "https://g.co",
        "Pricing",
    )
    assert (event.account, event.anonymous_id, event.event_id) == ("acme.com", "d-1", "e-1")
    assert event.occurred_at == NOW - timedelta(minutes=5)


def test_the_devices_raw_dtm_and_stm_are_kept_beside_the_corrected_time() -> None:
    device_now = NOW + timedelta(hours=1)  # the device clock is an hour ahead
    created = device_now - timedelta(minutes=5)
    event = _map(e="pv", url="https://x.io/", dtm=_ms(created), stm=_ms(device_now))
    assert event.occurred_at == NOW - timedelta(minutes=5)
    assert (event.client_occurred_at, event.client_sent_at) == (created, device_now)


def test_true_timestamp_is_trusted_and_contact_context_names_the_account() -> None:
    event = _map(
        e="pv",
        url="https://x.io/",
        ttm=_ms(NOW - timedelta(days=1)),
        stm=_ms(NOW + timedelta(hours=5)),
        cx=_contexts(("contact", {"email": "ana@initech.io"})),
    )
    assert event.occurred_at == NOW - timedelta(days=1)
    assert event.account == "initech.io"


def test_structured_event_naming_our_track_event() -> None:
    event = _map(
        e="se",
        se_ca="ads",
        se_ac="Ad Clicked",
        se_la="c-42",
        se_pr="email_signature",
        co=json.dumps(
            {
                "data": [
                    {"schema": "iglu:x/account/jsonschema/1-0-0", "data": {"domain": "globex.com"}}
                ]
            }
        ),
    )
    assert (event.type, event.campaign_id, event.channel, event.account) == (
        "ad_clicked",
        "c-42",
        "email_signature",
        "globex.com",
    )


def test_self_describing_event_naming_our_event() -> None:
    inner = {
        "schema": "iglu:com.abm/intent_signal/jsonschema/1-0-0",
        "data": {"topic": "crm", "score": 0.7, "source": "bombora"},
    }
    ue = json.dumps(
        {
            "schema": "iglu:com.snowplowanalytics.snowplow/unstruct_event/jsonschema/1-0-0",
            "data": inner,
        }
    )
    ue_px = base64.urlsafe_b64encode(ue.encode()).decode()
    for field, value in (("ue_pr", ue), ("ue_px", ue_px)):
        event = _map(e="ue", cx=_contexts(("account", {"groupId": "acme.com"})), **{field: value})
        assert (event.type, event.topic, event.score, event.provider) == (
            "intent_signal_received",
            "crm",
            0.7,
            "bombora",
        )


@pytest.mark.parametrize(
    "payload",
    [
        {"e": "se", "se_ca": "video", "se_ac": "play"},
        {"e": "pp", "url": "https://x.io/"},
        {
            "e": "ue",
            "ue_pr": json.dumps(
                {"data": {"schema": "iglu:com.acme/link_click/jsonschema/1-0-1", "data": {}}}
            ),
        },
    ],
)
def test_events_without_meaning_for_abm_are_ignored(payload: dict[str, Any]) -> None:
    assert _map(**payload) is None


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"url": "https://x.io/"}, "e"),
        ({"e": "pv", "dtm": "yesterday"}, "dtm"),
        ({"e": "pv", "cx": "!!!"}, "co"),
        ({"e": "ue", "ue_pr": json.dumps({"data": "nope"})}, "ue_pr"),
        ({"e": "se", "se_ac": "NPS Submitted", "se_va": "42"}, "score"),
    ],
)
def test_malformed_payloads_are_rejected_with_the_field(
    payload: dict[str, Any], field: str
) -> None:
    with pytest.raises(RejectedMessage) as rejection:
        _map(**payload)
    assert rejection.value.field == field


def test_event_names_match_segment_names_schema_names_and_our_types() -> None:
    assert event_name("Ad Clicked") == event_name("ad_clicked") == "ad clicked"
    assert event_name("intent_signal_received") == "intent signal"
    assert event_name("video_played") is None
