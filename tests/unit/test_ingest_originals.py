"""Dead letters carry a rejected message as it was sent: its bytes found again in the body
(``originals``), unless the source's IP policy or a removed key changed what is kept."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ingest.collect import collect, dead_letter_bytes
from services.ingest.identity import VisitorAccounts
from services.ingest.native import collect_native
from services.ingest.originals import ArrayElements, array_elements
from services.ingest.segment import Received

NOW = datetime(2026, 5, 1, 12, tzinfo=UTC)

# Spacing, key order, escapes and number spellings that a re-encoding would not keep.
BODY = (
    '{ "writeKey" : "k",\n "batch":[ {"type":"page","messageId":"ok","anonymousId":"v",'
    '"properties":{"url":"/a"}} ,\n\t{"messageId":"bad-1", "type" :"nope",'
    '"properties":{"caf\\u00e9":"Z\\u00fcrich 1.50E+2 ]},[", "n":1.0e2, "k":[1,[2,{}]]}},'
    '{"type":"track","messageId":"bad-2","event":"Ad Clicked","properties":{}}] ,'
    ' "sentAt":"2026-05-01T11:59:59Z"}'
)


def test_each_element_is_found_with_its_bytes_and_value() -> None:
    raw = BODY.encode()
    elements = array_elements(raw, "batch")
    assert [value for _, value in elements] == json.loads(raw)["batch"]
    assert elements[1][0] == (
        b'{"messageId":"bad-1", "type" :"nope","properties":{"caf\\u00e9":'
        b'"Z\\u00fcrich 1.50E+2 ]},[", "n":1.0e2, "k":[1,[2,{}]]}}'
    )
    assert all(raw.find(element) > 0 for element, _ in elements)


def test_the_last_of_a_repeated_key_counts_as_in_json_loads() -> None:
    raw = b'{"batch": [1], "batch": [2, 3]}'
    assert [value for _, value in array_elements(raw, "batch")] == json.loads(raw)["batch"]


def test_what_the_scanner_cannot_read_gives_no_originals() -> None:
    for raw in (b"[1]", b'{"batch": {"a": 1}}', b'{"other": [1]}', "{}".encode("utf-16"),
                b'{"batch": [1, 2', b'{"batch" 1}', b""):  # fmt: skip
        assert array_elements(raw, "batch") == []
    assert ArrayElements(b'{"batch": [1]}', "batch")(5) is None


@settings(max_examples=150, deadline=None)
@given(
    st.lists(
        st.recursive(
            st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
            lambda inner: (
                st.lists(inner, max_size=3)
                | st.dictionaries(st.text(max_size=5), inner, max_size=3)
            ),
            max_leaves=8,
        ),
        max_size=6,
    ),
    st.sampled_from([None, 0, 2]),
    st.booleans(),
)
def test_any_json_array_is_found_element_by_element(
    items: list[Any], indent: int | None, ascii_only: bool
) -> None:
    raw = json.dumps({"sentAt": "x", "batch": items, "z": [0]}, indent=indent,
                     ensure_ascii=ascii_only).encode()  # fmt: skip
    elements = array_elements(raw, "batch")
    assert [value for _, value in elements] == json.loads(raw)["batch"]
    assert [json.loads(element) for element, _ in elements] == json.loads(raw)["batch"]


def test_a_rejected_message_is_dead_lettered_as_sent() -> None:
    raw = BODY.encode()
    messages = json.loads(raw)["batch"]
    received = Received(at=NOW, source="web", ip_policy="keep")
    collected = collect(messages, received, VisitorAccounts(), 32768,
                        originals=ArrayElements(raw, "batch"))  # fmt: skip
    assert [r["messageId"] for r in collected.rejected] == ["bad-1", "bad-2"]
    elements = array_elements(raw, "batch")
    assert [dead[0] for dead in collected.dead] == [elements[1][0], elements[2][0]]
    without = collect(messages, received, VisitorAccounts(), 32768)
    assert [json.loads(d[0]) for d in without.dead] == [json.loads(d[0]) for d in collected.dead]
    assert [d[0] for d in without.dead] != [d[0] for d in collected.dead]  # re-encoded


def test_a_message_whose_ip_the_policy_truncates_is_re_encoded_without_it() -> None:
    raw = b'{"batch": [{"type": "nope", "context": {"ip": "203.0.113.77"}}]}'
    received = Received(at=NOW, source="web", ip_policy="truncate")
    collected = collect(json.loads(raw)["batch"], received, VisitorAccounts(), 32768,
                        originals=ArrayElements(raw, "batch"))  # fmt: skip
    (dead,) = collected.dead
    assert b"203.0.113.77" not in dead[0]
    assert json.loads(dead[0])["context"]["ip"] == "203.0.113.0"


def test_a_native_item_is_dead_lettered_as_sent() -> None:
    raw = b'{"events": [ {"type": "nps_submitted",  "event_id": "n1", "score": 11} ]}'
    received = Received(at=NOW, source="crm")
    collected = collect_native(json.loads(raw)["events"], received, VisitorAccounts(), 32768,
                               ArrayElements(raw, "events"))  # fmt: skip
    assert [dead[0] for dead in collected.dead] == [
        b'{"type": "nps_submitted",  "event_id": "n1", "score": 11}'
    ]


def test_an_original_that_says_something_else_is_not_used() -> None:
    kept = {"type": "nope"}
    assert dead_letter_bytes(kept, (b'{"type":"nope","aid":"key"}', {**kept, "aid": "key"})) == (
        b'{"type": "nope"}'
    )
