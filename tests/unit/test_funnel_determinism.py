"""Determinism: the same events give the same states and outputs, across JSON round-trips.

This is what makes crash recovery exact: the shell stores states as JSON with the offsets,
and replays the events after the stored offsets from those states.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from schemas.events import EVENT_ADAPTER, Event, StageChanged, TierChanged, encode_event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_event, apply_events
from services.funnel.state import AccountState

T0 = datetime(2024, 3, 1, 9, 30, tzinfo=UTC)
CONFIG = FunnelConfig()
FIT: dict[str, Any] = {
    "industry": "Fintech",
    "country": "GB",
    "employees": 1200,
    "funding": "Series C",
}
SURGE: dict[str, Any] = {"score": 75, "baseline": 2, "observed": 11, "detector_version": "intent-1"}
_counter = iter(range(1_000_000))


def ev(type_: str, day: float, account: str | None = "acme.com", **fields: Any) -> Event:
    at = T0 + timedelta(days=day)
    data = {
        "type": type_,
        "event_id": fields.pop("event_id", f"e{next(_counter)}"),
        "occurred_at": at,
        "received_at": at + timedelta(milliseconds=250),
        "account": account,
        "anonymous_id": None if account else "visitor-9",
        "source": "test",
        **fields,
    }
    return EVENT_ADAPTER.validate_python(data)


def story() -> list[Event]:
    """Three accounts through most rules, with noise, late and repeated events."""
    repeated = ev("page_viewed", 3, "beta.io", url="/demo")
    return [
        ev("account_upserted", 0, **FIT),
        ev("account_upserted", 0, "beta.io", target=True, employees=40),
        ev("page_viewed", 0.1, None, url="/pricing"),
        ev("page_viewed", 1, url="/pricing"),
        ev("surge_started", 2, topic="payments", **SURGE),
        repeated,
        ev("page_viewed", 3.5, "beta.io", url="/", is_bot=True),
        ev("opportunity_created", 4, opportunity_id="o-1", amount=150_000),
        ev("ad_impressed", 4.2, "gamma.org", campaign_id="c9"),
        ev("page_viewed", 4.3, "gamma.org", url="/blog"),
        repeated,
        ev("meeting_held", 5, attendees=["cfo@acme.com", "ae@vendor.io"]),
        ev("opportunity_lost", 6, "beta.io", opportunity_id="o-9"),
        ev("email_replied", 2.5, contact_email="ops@acme.com"),  # late
        ev("surge_ended", 20, topic="payments", **SURGE),
        ev("opportunity_won", 45, opportunity_id="o-1"),
        ev("intent_signal_received", 120, "beta.io", topic="erp"),  # beta's engagement lapses
        ev("account_upserted", 121, "gamma.org", **FIT),
        ev("subscription_renewed", 410, amount=160_000),
        ev("subscription_churned", 800),
        ev("account_upserted", 801, "beta.io", target=False),
    ]


EVENTS = story()


def dumped(states: dict[str, AccountState]) -> dict[str, str]:
    return {domain: state.model_dump_json() for domain, state in sorted(states.items())}


def encoded(outputs: Sequence[StageChanged | TierChanged]) -> list[bytes]:
    return [encode_event(output) for output in outputs]


def round_trip(states: dict[str, AccountState]) -> dict[str, AccountState]:
    return {d: AccountState.model_validate_json(s.model_dump_json()) for d, s in states.items()}


def test_the_story_exercises_the_rules() -> None:
    states, outputs = apply_events({}, EVENTS, CONFIG)
    rules = {o.rule for o in outputs}
    assert {"opportunity_won", "renewed", "churned", "engagement_lapsed", "untargeted"} <= rules
    assert {"tier1_just_right", "tier3_below_fit"} <= rules
    assert set(states) == {"acme.com", "beta.io", "gamma.org"}
    assert len({o.event_id for o in outputs}) == len(outputs)


def test_replaying_from_scratch_is_identical() -> None:
    first_states, first_outputs = apply_events({}, EVENTS, CONFIG)
    second_states, second_outputs = apply_events({}, EVENTS, CONFIG)
    assert dumped(first_states) == dumped(second_states)
    assert first_states == second_states
    assert encoded(first_outputs) == encoded(second_outputs)


@pytest.mark.parametrize("cut", range(len(EVENTS) + 1))
def test_resuming_from_json_states_mid_way_is_identical(cut: int) -> None:
    whole_states, whole_outputs = apply_events({}, EVENTS, CONFIG)

    before, first_outputs = apply_events({}, EVENTS[:cut], CONFIG)
    restored = round_trip(before)
    after, second_outputs = apply_events(restored, EVENTS[cut:], CONFIG)

    assert dumped({**restored, **after}) == dumped(whole_states)
    assert encoded(first_outputs + second_outputs) == encoded(whole_outputs)


def test_apply_event_one_by_one_matches_apply_events() -> None:
    states: dict[str, AccountState] = {}
    outputs: list[StageChanged | TierChanged] = []
    for event in EVENTS:
        if event.account is None:
            continue
        state, produced = apply_event(states.get(event.account), event, CONFIG)
        assert state is not None
        states[event.account] = state
        outputs.extend(produced)
    batch_states, batch_outputs = apply_events({}, EVENTS, CONFIG)
    assert dumped(states) == dumped(batch_states)
    assert outputs == batch_outputs


def test_a_round_tripped_state_is_equal_and_dumps_identically() -> None:
    states, _ = apply_events({}, EVENTS, CONFIG)
    for state in states.values():
        restored = AccountState.model_validate_json(state.model_dump_json())
        assert restored == state
        assert restored.model_dump_json() == state.model_dump_json()


def _reverse_keys(document: Any) -> Any:
    """Every JSON object with its keys in reverse order, as a store may hand them back."""
    if isinstance(document, dict):
        return {k: _reverse_keys(document[k]) for k in reversed(list(document))}
    if isinstance(document, list):
        return [_reverse_keys(item) for item in document]
    return document


@pytest.mark.parametrize("cut", [4, 9, 15])
def test_resuming_from_reordered_json_documents_is_identical(cut: int) -> None:
    """The shell stores ``model_dump(mode="json")`` in jsonb, which reorders keys."""
    whole_states, whole_outputs = apply_events({}, EVENTS, CONFIG)

    before, first_outputs = apply_events({}, EVENTS[:cut], CONFIG)
    restored = {
        domain: AccountState.model_validate(_reverse_keys(state.model_dump(mode="json")))
        for domain, state in before.items()
    }
    assert dumped(restored) == dumped(before)
    after, second_outputs = apply_events(restored, EVENTS[cut:], CONFIG)

    assert dumped({**restored, **after}) == dumped(whole_states)
    assert encoded(first_outputs + second_outputs) == encoded(whole_outputs)


def test_replaying_a_batch_onto_its_own_result_changes_nothing() -> None:
    """At-least-once delivery: a batch applied again (within recent ids) is a no-op."""
    tail = [e for e in EVENTS[-6:] if e.account is not None]
    states, _ = apply_events({}, EVENTS, CONFIG)
    changed, outputs = apply_events(states, tail, CONFIG)
    assert changed == {}
    assert outputs == []
