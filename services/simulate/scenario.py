"""The simulated world of one run: accounts, their journeys, and campaign spend.

Pure: no clock and no I/O. ``build_scenario`` takes the start of the run and a seeded
random source: one seed always gives the same accounts and journeys. Message ids come
from the seed *and* the start, so the same run repeats exactly while a later run is not
mistaken for a replay by an ingest that deduplicates on ``messageId``.

Every account starts with a ``group`` call (firmographics). About 70% fit the ICP and a
few are marked ``target: true``; each target account gets an ``Outcome`` (its intended
final stage) and a journey written towards it over the ~120 days before the start.
"""

from __future__ import annotations

import heapq
import random
from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime

from services.simulate.campaigns import campaign_spend
from services.simulate.firmographics import Account, make_accounts
from services.simulate.journeys import write_journey
from services.simulate.plan import plan_journey
from services.simulate.segment import Message, iso, stamp, timestamp_of
from services.simulate.timeline import HISTORY_DAYS, Outcome, allocate_outcomes


@dataclass(frozen=True, slots=True)
class Journey:
    account: Account
    outcome: Outcome
    messages: tuple[Message, ...]
    """This account's messages, oldest first; the ``group`` call is the first."""


@dataclass(frozen=True, slots=True)
class Scenario:
    start: datetime
    journeys: tuple[Journey, ...]
    spend: tuple[Message, ...]
    """Campaign spend: not tied to one account."""

    def messages(self) -> list[Message]:
        """All messages as live traffic: accounts interleaved by time, each in its order."""
        streams = [journey.messages for journey in self.journeys] + [self.spend]
        return list(heapq.merge(*streams, key=timestamp_of))

    def outcomes(self) -> Counter[Outcome]:
        return Counter(journey.outcome for journey in self.journeys)


def build_scenario(*, accounts: int, start: datetime, rng: random.Random) -> Scenario:
    """``accounts`` journeys ending at ``start`` (which must carry a time zone)."""
    if accounts < 1:
        raise ValueError("simulate at least one account")
    if start.tzinfo is None:
        raise ValueError("the start of the simulation must carry a time zone")
    start = start.astimezone(UTC)
    companies = make_accounts(accounts, rng)
    targets = [account.index for account in companies if account.is_target]
    outcomes = dict(zip(targets, allocate_outcomes(len(targets), rng), strict=True))
    ids = random.Random(f"{rng.getrandbits(64)}:{iso(start)}")
    journeys = []
    for account in companies:
        outcome = outcomes.get(account.index, Outcome.NOT_TARGET)
        drafts = write_journey(plan_journey(account, outcome, start, rng), rng)
        journeys.append(Journey(account, outcome, stamp(drafts, ids)))
    spend = stamp(campaign_spend(start, HISTORY_DAYS, rng), ids)
    return Scenario(start, tuple(journeys), spend)
