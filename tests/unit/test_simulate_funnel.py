"""The simulator and the funnel agree: its messages, mapped as ingest maps them and applied
by the funnel's pure core, leave every account in the stage its journey was written for.

This is what `make run` shows a newcomer; a journey that ends elsewhere would show a
funnel that disagrees with the simulator's own summary."""

from __future__ import annotations

from collections import Counter

import pytest

from schemas import topics
from schemas.events import ClockTicked, InboundEvent
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.ingest.segment import Received, to_event
from services.simulate.scenario import Scenario
from services.simulate.segment import timestamp_of
from tests.unit.simulation_world import START, scenario


def _as_ingested(world: Scenario) -> list[InboundEvent | ClockTicked]:
    """Every message as ingest maps it when it arrives, then a round of clock ticks at the
    start of the run (what the funnel's clock does), so lapsed windows expire."""
    events: list[InboundEvent | ClockTicked] = []
    for message in world.messages():
        at = timestamp_of(message)
        event = to_event(message, Received(at=at, source="simulation"), known=lambda _: None)
        if event is not None:
            events.append(event)
    ticks = [
        ClockTicked(
            event_id=f"tick-{p}", occurred_at=START, received_at=START, source="test", partition=p
        )
        for p in range(topics.EVENTS.partitions)
    ]
    return events + ticks


@pytest.mark.parametrize(("seed", "accounts"), [(7, 50), (3, 200)])  # 7, 50: `make run`
def test_every_simulated_account_ends_in_its_intended_stage(seed: int, accounts: int) -> None:
    world = scenario(seed=seed, accounts=accounts)
    states, _ = apply_events({}, _as_ingested(world), FunnelConfig())
    ended = {j.account.domain: states[j.account.domain].stage for j in world.journeys}
    intended = {j.account.domain: j.outcome.final_stage for j in world.journeys}
    assert ended == intended
    assert len(Counter(intended.values())) == 7  # the six stages and "not a target"
