"""The pixel's query -> a Segment message, with the base64 JSON ``data`` parameter (pure)."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import pytest
from hypothesis import given
from hypothesis import strategies as st

from schemas.events import AdInteracted, PageViewed
from services.ingest.collect import collect
from services.ingest.errors import RejectedMessage
from services.ingest.identity import VisitorAccounts
from services.ingest.pixel import MAX_HIT_BYTES, pixel_message, pixel_query
from services.ingest.segment import Received

RECEIVED = Received(at=datetime(2026, 5, 1, 12, tzinfo=UTC), source="ads")
IMPRESSION = {"type": "track", "event": "Ad Impression",
              "properties": {"campaign_id": "q3-cfo", "channel": "email_signature"}}  # fmt: skip


def data(document: Any, encode: Any = base64.urlsafe_b64encode) -> str:
    return encode(json.dumps(document).encode()).decode()


def test_parameters_alone_make_a_page_call() -> None:
    query = {"url": "https://v.io/pricing", "ref": "https://g.co", "title": "Pricing",
             "aid": "v1", "gid": "acme.com", "mid": "m1", "ts": "2026-05-01T11:00:00Z",
             "ua": "Mozilla/5.0"}  # fmt: skip
    assert pixel_message(query) == {
        "type": "page",
        "messageId": "m1",
        "anonymousId": "v1",
        "timestamp": "2026-05-01T11:00:00Z",
        "properties": {
            "url": "https://v.io/pricing",
            "referrer": "https://g.co",
            "title": "Pricing",
        },
        "context": {"groupId": "acme.com", "userAgent": "Mozilla/5.0"},
    }


def test_a_hit_without_a_message_id_gets_a_fresh_one_each_time() -> None:
    first, second = pixel_message({}), pixel_message({})
    assert len(first["messageId"]) == 32 and first["messageId"] != second["messageId"]


def test_data_turns_an_image_into_a_track_call_with_the_parameters_as_defaults() -> None:
    message = pixel_message({"gid": "acme.com", "aid": "v9", "mid": "m2", "url": "ignored",
                             "data": data(IMPRESSION)})  # fmt: skip
    assert message == {
        "type": "track",
        "event": "Ad Impression",
        "messageId": "m2",
        "anonymousId": "v9",
        "timestamp": None,
        "properties": {"campaign_id": "q3-cfo", "channel": "email_signature"},
        "context": {"groupId": "acme.com"},
    }
    [event] = collect([{"gid": "acme.com", "mid": "m2", "data": data(IMPRESSION)}], RECEIVED,
                      VisitorAccounts(), MAX_HIT_BYTES, pixel_message).events  # fmt: skip
    assert isinstance(event, AdInteracted)
    assert (event.type, event.account, event.campaign_id, event.channel) == (
        "ad_impressed",
        "acme.com",
        "q3-cfo",
        "email_signature",
    )


def test_data_fields_override_and_its_context_and_properties_merge() -> None:
    document = {"messageId": "from-data", "properties": {"title": "Ours"},
                "context": {"groupId": "globex.com", "locale": "de"}}  # fmt: skip
    message = pixel_message({"mid": "m3", "gid": "acme.com", "url": "https://v.io/a",
                             "data": data(document)})  # fmt: skip
    assert message["messageId"] == "from-data"
    assert message["properties"] == {"url": "https://v.io/a", "referrer": None, "title": "Ours"}
    assert message["context"] == {"groupId": "globex.com", "locale": "de"}
    [event] = collect([{"data": data(document)}], RECEIVED, VisitorAccounts(), MAX_HIT_BYTES,
                      pixel_message).events  # fmt: skip
    assert isinstance(event, PageViewed) and (event.account, event.title) == ("globex.com", "Ours")


@pytest.mark.parametrize(
    "encoded",
    [
        data(IMPRESSION, base64.b64encode),  # standard alphabet, padded
        data(IMPRESSION).rstrip("="),  # URL-safe, unpadded
        data(IMPRESSION, base64.b64encode).replace("+", " "),  # a '+' the URL did not escape
    ],
)
def test_data_is_read_in_every_base64_spelling_senders_use(encoded: str) -> None:
    assert pixel_message({"data": encoded})["event"] == "Ad Impression"


def test_a_write_key_inside_data_is_dropped() -> None:
    message = pixel_message({"data": data({**IMPRESSION, "writeKey": "secret"})})
    assert "writeKey" not in message


@pytest.mark.parametrize(
    "encoded",
    [
        "%%%not base64",
        base64.b64encode(b"\xff\xfe").decode(),
        data([1, 2]),
        data("page"),
        base64.b64encode(b"{not json").decode(),
        base64.b64encode(b"[" * 2500 + b"]" * 2500).decode(),  # deeper than json reads
    ],
)
def test_data_that_is_not_base64_of_a_json_object_is_rejected(encoded: str) -> None:
    with pytest.raises(RejectedMessage) as rejected:
        pixel_message({"data": encoded})
    assert rejected.value.field == "data"
    result = collect([{"data": encoded}], RECEIVED, VisitorAccounts(), MAX_HIT_BYTES, pixel_message)
    assert (result.events, result.rejected[0]["field"]) == ([], "data")
    assert json.loads(result.dead[0][0]) == {"data": encoded}  # the hit as received


def test_the_query_is_parsed_as_starlette_parses_it() -> None:
    scope = {"query_string": b"url=https%3A%2F%2Fv.io%2Fa%3Fb%3D1&title=&aid=v1&aid=v2&t=a+b"}
    assert pixel_query(scope) == {"url": "https://v.io/a?b=1", "title": "", "aid": "v2",
                                  "t": "a b"}  # fmt: skip
    assert pixel_query({}) == {}


# Query strings as a client may send them: the characters that mean something to the
# parser (separators, escapes, plus) mixed with any other, escapes valid or not.
_QUERY_PARTS = st.one_of(
    st.sampled_from(["&", "=", "+", "%", "%2", "%20", "%3D", "%26", "%zz", "%C3%A9", "%ff", ";"]),
    st.text(max_size=4),
)


@given(st.lists(_QUERY_PARTS, max_size=30).map("".join))
def test_the_query_parser_agrees_with_parse_qsl_on_any_query(query: str) -> None:
    raw = query.encode("utf-8")
    expected = dict(parse_qsl(raw.decode("latin-1"), keep_blank_values=True))
    assert pixel_query({"query_string": raw}) == expected
