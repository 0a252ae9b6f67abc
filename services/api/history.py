"""An account's stage or tier history in the order its moves were made.

The rows are ordered by time, but one event can make several moves at one moment (a new
target already engaged enters ``target`` and moves on to ``engaged``), and their ids,
which break the tie, are random. The moves of one kind form a chain (each starts where
the previous one ended), so within a tie the chain gives the order.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import groupby, permutations
from typing import Any

Row = dict[str, Any]

MAX_CHAINED = 6  # moves of one moment ordered by trying every order (one event makes 1-3)


def in_order_made(rows: Sequence[Row]) -> list[Row]:
    """``rows`` of one kind (``from_value``, ``to_value``, ``occurred_at``), sorted by
    time, with each moment's moves chained from where the previous moment ended (in the
    given order where no chain covers them all)."""
    ordered: list[Row] = []
    for _, tied in groupby(rows, key=lambda row: row["occurred_at"]):
        moment = list(tied)
        ended = ordered[-1]["to_value"] if ordered else None
        ordered += _chained(moment, ended) if 1 < len(moment) <= MAX_CHAINED else moment
    return ordered


def _chained(moment: list[Row], ended: Any) -> list[Row]:
    for order in permutations(moment):
        previous = ended
        for row in order:
            if row["from_value"] != previous:
                break
            previous = row["to_value"]
        else:
            return list(order)
    return moment
