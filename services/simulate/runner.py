"""``abm simulate``: build the scenario, post it to the ingest as live traffic, summarise.

The thin async shell around the pure scenario: messages go out interleaved across
accounts in time order (each account's in its own order), batch after batch, optionally
capped at ``rate`` messages per second.
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime

import httpx

from schemas.events import STAGE_ORDER
from services.simulate.client import MAX_BATCH_MESSAGES, SegmentClient, SendStats, batches
from services.simulate.scenario import Scenario, build_scenario
from services.simulate.segment import Message
from services.simulate.timeline import Outcome

log = logging.getLogger(__name__)

BATCHES_PER_SECOND = 4
"""With a rate cap, batches are sized so that about this many go out each second."""

_FALLBACKS = {Outcome.LOST: "after a lost opportunity", Outcome.CHURNED: "churned customers"}


@dataclass(frozen=True, slots=True)
class SimulationSummary:
    accounts: int
    messages_by_type: Mapping[str, int]
    """Messages sent per Segment call type (group, identify, page, track)."""
    events_by_name: Mapping[str, int]
    """Track calls sent per event name."""
    outcomes: Mapping[Outcome, int]
    """Accounts per journey outcome (see ``Outcome.final_stage``)."""
    batches: int
    retries: int
    elapsed_s: float

    @property
    def messages(self) -> int:
        return sum(self.messages_by_type.values())

    def accounts_per_stage(self) -> dict[str, int]:
        """Accounts per intended final stage, in funnel order; ``none``: not a target."""
        counts = {stage.value: 0 for stage in STAGE_ORDER} | {"none": 0}
        for outcome, accounts in self.outcomes.items():
            stage = outcome.final_stage
            counts[stage.value if stage else "none"] += accounts
        return counts

    def render(self) -> str:
        types = ", ".join(f"{n:,} {kind}" for kind, n in sorted(self.messages_by_type.items()))
        lines = [
            f"Simulated {self.accounts} accounts: {self.messages:,} messages in "
            f"{self.batches} batches ({self.retries} retries) in {self.elapsed_s:.1f} s.",
            f"Messages: {types}.",
            "Accounts per intended final stage:",
        ]
        for stage, accounts in self.accounts_per_stage().items():
            label = "not a target" if stage == "none" else stage
            lines.append(f"  {label:<13}{accounts:>4}{self._fallback_note(stage)}")
        top = sorted(self.events_by_name.items(), key=lambda item: (-item[1], item[0]))
        lines.append("Events: " + ", ".join(f"{name} {n:,}" for name, n in top) + ".")
        return "\n".join(lines)

    def _fallback_note(self, stage: str) -> str:
        notes = [
            f"{self.outcomes.get(outcome, 0)} {why}"
            for outcome, why in _FALLBACKS.items()
            if outcome.final_stage == stage and self.outcomes.get(outcome, 0)
        ]
        return f"  (incl. {', '.join(notes)})" if notes else ""


class Pacer:
    """Spaces sends so that on average at most ``rate`` messages go out per second."""

    def __init__(
        self,
        rate: float | None,
        *,
        clock: Callable[[], float] = time.monotonic,
        sleep: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        if rate is not None and rate <= 0:
            raise ValueError("rate must be positive (or None for no cap)")
        self._rate = rate
        self._clock = clock
        self._sleep = sleep
        self._next: float | None = None

    async def wait(self, count: int) -> None:
        """Wait until ``count`` more messages may go out."""
        if self._rate is None:
            return
        now = self._clock()
        if self._next is None or self._next < now:
            self._next = now  # idle time is not saved up for a later burst
        if self._next > now:
            await self._sleep(self._next - now)
        self._next += count / self._rate


def batch_size(rate: float | None) -> int:
    """Full batches when uncapped; smaller, more frequent ones under a rate cap."""
    if rate is None:
        return MAX_BATCH_MESSAGES
    return max(1, min(MAX_BATCH_MESSAGES, int(rate / BATCHES_PER_SECOND)))


async def simulate(
    *,
    ingest_url: str,
    write_key: str,
    accounts: int = 50,
    seed: int = 7,
    rate: float | None = None,
    now: datetime,
    transport: httpx.AsyncBaseTransport | None = None,
) -> SimulationSummary:
    """Post ``accounts`` journeys ending at ``now`` through the ingest's Segment API.

    ``rate`` caps messages per second (None: as fast as the ingest accepts).
    ``transport`` replaces the network (tests). Raises ``IngestError`` if the ingest
    rejects a batch or stays unavailable.
    """
    pacer = Pacer(rate)
    scenario = build_scenario(accounts=accounts, start=now, rng=random.Random(seed))
    messages = scenario.messages()
    started = time.monotonic()
    client = SegmentClient(ingest_url=ingest_url, write_key=write_key, transport=transport)
    async with client:
        for number, batch in enumerate(batches(messages, max_messages=batch_size(rate)), 1):
            await pacer.wait(len(batch))
            await client.send(batch)
            if number % 10 == 0:
                log.info("simulate: %d of %d messages sent", client.stats.messages, len(messages))
    return summarize(scenario, messages, client.stats, time.monotonic() - started)


def summarize(
    scenario: Scenario, sent: Sequence[Message], stats: SendStats, elapsed_s: float
) -> SimulationSummary:
    return SimulationSummary(
        accounts=len(scenario.journeys),
        messages_by_type=dict(Counter(str(m["type"]) for m in sent)),
        events_by_name=dict(Counter(str(m["event"]) for m in sent if m["type"] == "track")),
        outcomes=dict(scenario.outcomes()),
        batches=stats.batches,
        retries=stats.retries,
        elapsed_s=elapsed_s,
    )
