"""The event contract: JSON Schemas in sync with the models, envelope rules."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from pydantic import ValidationError

from schemas import topics
from schemas.envelope import account_key, normalize_domain
from schemas.events import (
    EVENT_ADAPTER,
    AccountUpserted,
    PageViewed,
    StageChanged,
    decode_event,
    encode_event,
)
from schemas.export import JSON_DIR, render, schema_documents

NOW = datetime(2026, 3, 1, 12, tzinfo=UTC)


@pytest.mark.parametrize("name", sorted(schema_documents()))
def test_committed_json_schema_matches_the_models(name: str) -> None:
    committed = (JSON_DIR / name).read_text()
    assert committed == render(schema_documents()[name]), "run `make schemas` and commit"


def test_every_event_type_is_in_the_exported_schema() -> None:
    document = json.loads((JSON_DIR / "event.schema.json").read_text())
    exported = {
        value for definition in document["$defs"].values() for value in _type_literals(definition)
    }
    wanted = {"page_viewed", "account_upserted", "opportunity_won", "surge_started",
              "stage_changed", "tier_changed", "campaign_spent", "nps_submitted"}  # fmt: skip
    assert wanted <= exported


def _type_literals(definition: dict[str, object]) -> list[str]:
    prop = definition.get("properties", {}).get("type", {})  # type: ignore[union-attr]
    return [prop["const"]] if "const" in prop else list(prop.get("enum", []))


def test_round_trip_through_the_wire_format() -> None:
    event = PageViewed(event_id="e1", occurred_at=NOW, received_at=NOW, account="acme.com",
                       source="web", url="https://acme.com/pricing")  # fmt: skip
    assert decode_event(encode_event(event)) == event


def test_derived_events_round_trip_with_empty_from_stage() -> None:
    change = StageChanged(event_id="s1", occurred_at=NOW, received_at=NOW, account="acme.com",
                          source="funnel", from_stage=None, to_stage="target", rule="fit",
                          config_version="v1")  # fmt: skip
    assert decode_event(encode_event(change)) == change


def test_unknown_fields_are_ignored_and_domains_normalised() -> None:
    raw = {"type": "page_viewed", "event_id": "e", "occurred_at": NOW.isoformat(),
           "received_at": NOW.isoformat(), "source": "s", "url": "/", "account": "WWW.Acme.COM",
           "future_field": 1}  # fmt: skip
    event = EVENT_ADAPTER.validate_python(raw)
    assert event.account == "acme.com"


def test_naive_timestamps_are_rejected() -> None:
    with pytest.raises(ValidationError, match="timezone"):
        PageViewed(event_id="e", occurred_at=datetime(2026, 1, 1), received_at=NOW,  # noqa: DTZ001
                   source="s", url="/")  # fmt: skip


def test_account_upserted_needs_its_account() -> None:
    with pytest.raises(ValidationError, match="account"):
        AccountUpserted(event_id="e", occurred_at=NOW, received_at=NOW, source="crm")


@pytest.mark.parametrize("bad", ["", "not a domain", "localhost", "a..b.com", "x" * 300 + ".com"])
def test_bad_domains_are_rejected(bad: str) -> None:
    with pytest.raises(ValueError, match="domain"):
        normalize_domain(bad)


def test_partition_key_is_account_then_visitor() -> None:
    assert account_key("acme.com", "v1") == "acme.com"
    assert account_key(None, "v1") == "anon:v1"
    assert topics.partition_key("acme.com") == b"acme.com"
    assert len({t.name for t in topics.ALL_TOPICS}) == len(topics.ALL_TOPICS)


def test_nul_characters_are_refused_at_the_contract() -> None:
    with pytest.raises(ValidationError, match="url"):
        PageViewed(event_id="e", occurred_at=NOW, received_at=NOW, source="s", url="/a\x00b")
    with pytest.raises(ValidationError, match="event_id"):
        PageViewed(event_id="e\x00", occurred_at=NOW, received_at=NOW, source="s", url="/")
