"""An account's history in the order its moves were made, ties of one moment included."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from services.api.history import in_order_made

T0 = datetime(2026, 3, 1, tzinfo=UTC)


def move(day: int, frm: str | None, to: str | None, event_id: str) -> dict[str, Any]:
    return {
        "occurred_at": T0 + timedelta(days=day),
        "from_value": frm,
        "to_value": to,
        "event_id": event_id,
    }


def moves(rows: list[dict[str, Any]]) -> list[tuple[str | None, str | None]]:
    return [(r["from_value"], r["to_value"]) for r in in_order_made(rows)]


def test_moves_of_one_moment_follow_their_chain_not_their_ids() -> None:
    # Targeted on day 2 while already engaged: two moves at one moment, whose random ids
    # sort the second first.
    rows = [
        move(2, "target", "engaged", "0a"),
        move(2, None, "target", "f3"),
        move(9, "engaged", "opportunity", "11"),
    ]
    assert moves(rows) == [(None, "target"), ("target", "engaged"), ("engaged", "opportunity")]


MOMENT_5 = [  # opportunity opened, lost, then engagement lapsed: one moment's moves
    move(5, "engaged", "opportunity", "m1"),
    move(5, "opportunity", "engaged", "m2"),
    move(5, "engaged", "target", "m3"),
]


@pytest.mark.parametrize("order", list(itertools.permutations(range(3))))
def test_a_tie_continues_from_the_moment_before_whichever_order_the_ids_give(
    order: tuple[int, ...],
) -> None:
    """A greedy pick from "engaged" could take engaged -> target first; the whole chain
    is found instead."""
    before = [move(1, None, "target", "aa"), move(1, "target", "engaged", "bb")]
    rows = before + [MOMENT_5[i] for i in order]
    assert moves(rows)[2:] == [
        ("engaged", "opportunity"),
        ("opportunity", "engaged"),
        ("engaged", "target"),
    ]


def test_rows_that_do_not_chain_keep_their_order() -> None:
    rows = [move(1, "2", "1", "b"), move(1, "3", "2", "a")]  # tiers, the chain broken
    assert moves(rows) == [("2", "1"), ("3", "2")]
    assert moves([]) == []
