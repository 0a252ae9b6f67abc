"""The funnel's cheap ``model_copy`` makes the same copy as pydantic's."""

from __future__ import annotations

from datetime import UTC, date, datetime

import pydantic
import pytest

from services.funnel.fit import FitScore
from services.funnel.state import AccountState, Contact, Counters, new_account_state

AT = datetime(2026, 3, 2, 9, tzinfo=UTC)


def _state() -> AccountState:
    return new_account_state("acme.com", AT, FitScore())


def test_a_copy_with_changes_is_the_copy_pydantic_makes() -> None:
    state = _state()
    update = {"clock": datetime(2026, 3, 3, tzinfo=UTC), "counters": Counters(visits=2)}
    ours = state.model_copy(update=update)
    theirs = pydantic.BaseModel.model_copy(state, update=update)
    assert ours == theirs
    assert ours.model_dump_json() == theirs.model_dump_json()
    assert ours.model_fields_set == theirs.model_fields_set
    assert type(ours) is AccountState


def test_the_original_is_left_as_it_was() -> None:
    state = _state()
    before = state.model_dump_json()
    copied = state.model_copy(update={"recent_event_keys": ("k1",)})
    assert copied.recent_event_keys == ("k1",)
    assert state.model_dump_json() == before
    assert copied.__dict__ is not state.__dict__


def test_a_copy_stays_frozen() -> None:
    copied = Contact().model_copy(update={"engaged_on": date(2026, 3, 2)})
    with pytest.raises(pydantic.ValidationError):
        copied.role = "champion"  # type: ignore[misc]


def test_copies_without_changes_and_deep_copies_are_pydantic_s() -> None:
    state = _state().model_copy(update={"counters": Counters(visits=1)})
    assert state.model_copy() == state
    deep = state.model_copy(deep=True)
    assert deep == state and deep.counters is not state.counters
