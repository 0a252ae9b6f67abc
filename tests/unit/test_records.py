"""State records (services.kit.records): cheap copies with changes, validation and JSON."""

from __future__ import annotations

import dataclasses
from datetime import UTC, date, datetime

import pydantic
import pytest

from services.funnel.config import FunnelConfig
from services.funnel.fit import Firmographics, FitContribution, FitScore
from services.funnel.state import (
    AccountState,
    ClosedOpportunity,
    Contact,
    Counters,
    new_account_state,
)
from services.intent.config import IntentConfig
from services.intent.detector import SeriesState

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)
RECORDS = [AccountState, ClosedOpportunity, Contact, Counters, Firmographics, FitContribution]
RECORDS += [FitScore, FunnelConfig, IntentConfig, SeriesState]


def _state() -> AccountState:
    return new_account_state("acme.com", AT, FitScore())


def test_a_copy_with_changes_equals_the_record_built_with_them() -> None:
    state = _state()
    update = {"clock": datetime(2026, 3, 3, tzinfo=UTC), "counters": Counters(visits=2)}
    copied = state.model_copy(update=update)
    built = AccountState(**{**dataclasses.asdict(state), **update})
    assert copied == built
    assert copied.model_dump_json() == built.model_dump_json()
    assert type(copied) is AccountState
    assert copied.counters.visits == 2


def test_the_original_is_left_as_it_was() -> None:
    state = _state()
    before = state.model_dump_json()
    copied = state.model_copy(update={"recent_event_keys": ("k1",)})
    assert copied.recent_event_keys == ("k1",)
    assert state.model_dump_json() == before
    assert copied.__dict__ is not state.__dict__
    assert state.model_copy() == state and state.model_copy() is not state


def test_a_copy_stays_frozen() -> None:
    copied = Contact().model_copy(update={"engaged_on": date(2026, 3, 2)})
    with pytest.raises(dataclasses.FrozenInstanceError):
        copied.role = "champion"  # type: ignore[misc]


def test_json_round_trips_and_validation_refuses_what_the_types_refuse() -> None:
    state = _state().model_copy(update={"contacts": {"k": Contact(role="champion")}})
    assert AccountState.model_validate_json(state.model_dump_json()) == state
    assert AccountState.model_validate(state.model_dump(mode="json")) == state
    assert AccountState.model_validate({**state.model_dump(mode="json"), "newer": 1}) == state
    with pytest.raises(pydantic.ValidationError, match="clock"):
        AccountState.model_validate({**state.model_dump(mode="json"), "clock": "2026-03-02"})
    assert Counters.field_names()[:2] == ("visits", "high_value_visits")


@pytest.mark.parametrize("record", RECORDS, ids=lambda record: record.__name__)
def test_no_record_has_a_getattr_hook(record: type) -> None:
    """The reason the records are not ``BaseModel``s: a ``__getattr__`` anywhere in the
    class's MRO stops CPython specialising attribute reads on it (see ``frozen``)."""
    assert not any("__getattr__" in vars(base) for base in record.__mro__)
