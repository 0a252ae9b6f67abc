"""The simulated world the simulator's tests share: a fixed start and seeded scenarios."""

from __future__ import annotations

import random
from datetime import UTC, datetime

from services.simulate.scenario import Scenario, build_scenario

START = datetime(2025, 6, 2, 12, 0, tzinfo=UTC)


def scenario(seed: int = 7, accounts: int = 50, start: datetime = START) -> Scenario:
    return build_scenario(accounts=accounts, start=start, rng=random.Random(seed))
