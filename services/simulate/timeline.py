"""Where each simulated account's journey ends, and when its milestones happen.

An ``Outcome`` is the stage the journey is written to leave the account in (its intended
final stage), plus the two ways down: a lost opportunity and a churned customer. A
``Timeline`` places the milestones in the ~120 days before the start of the run, so
baselines exist and the last steps are recent.

Terms are compressed so that one history window shows a whole customer life: a deal won
about ten weeks ago renews (or churns) in the last three weeks.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from schemas.events import Stage

HISTORY_DAYS = 120


class Outcome(StrEnum):
    NOT_TARGET = "not_target"
    TARGET = "target"
    ENGAGED = "engaged"
    OPPORTUNITY = "opportunity"
    LOST = "lost"
    WON = "won"
    RETENTION = "retention"
    EXPANSION = "expansion"
    CHURNED = "churned"

    @property
    def final_stage(self) -> Stage | None:
        """The funnel stage the journey should leave the account in (None: not a target)."""
        return _FINAL_STAGE[self]


_FINAL_STAGE: dict[Outcome, Stage | None] = {
    Outcome.NOT_TARGET: None,
    Outcome.TARGET: Stage.TARGET,
    Outcome.ENGAGED: Stage.ENGAGED,
    Outcome.OPPORTUNITY: Stage.OPPORTUNITY,
    Outcome.LOST: Stage.ENGAGED,  # back down: nurtured after the loss, still engaged
    Outcome.WON: Stage.WON,
    Outcome.RETENTION: Stage.RETENTION,
    Outcome.EXPANSION: Stage.EXPANSION,
    Outcome.CHURNED: Stage.TARGET,  # back down: fits the ICP, no longer a customer
}

ENGAGED_OUTCOMES = frozenset(Outcome) - {Outcome.NOT_TARGET, Outcome.TARGET}
OPPORTUNITY_OUTCOMES = ENGAGED_OUTCOMES - {Outcome.ENGAGED}
CUSTOMER_OUTCOMES = frozenset({Outcome.WON, Outcome.RETENTION, Outcome.EXPANSION, Outcome.CHURNED})

# Share of the target accounts per outcome; each of the six stages gets a floor below.
OUTCOME_WEIGHTS: dict[Outcome, float] = {
    Outcome.TARGET: 0.14,
    Outcome.ENGAGED: 0.28,
    Outcome.OPPORTUNITY: 0.14,
    Outcome.LOST: 0.06,
    Outcome.WON: 0.12,
    Outcome.RETENTION: 0.11,
    Outcome.EXPANSION: 0.09,
    Outcome.CHURNED: 0.06,
}
STAGE_OUTCOMES = (
    Outcome.TARGET, Outcome.ENGAGED, Outcome.OPPORTUNITY,
    Outcome.WON, Outcome.RETENTION, Outcome.EXPANSION,
)  # fmt: skip


def allocate_outcomes(targets: int, rng: random.Random) -> list[Outcome]:
    """Outcomes for ``targets`` accounts in random order, proportional to the weights.

    Largest remainders make the counts add up; every one of the six stages then gets at
    least two accounts (one below 24 targets) so the demo shows the whole funnel.
    """
    quotas = {o: targets * w for o, w in OUTCOME_WEIGHTS.items()}
    counts = {o: int(q) for o, q in quotas.items()}
    by_remainder = sorted(quotas, key=lambda o: quotas[o] - counts[o], reverse=True)
    for outcome in by_remainder[: targets - sum(counts.values())]:
        counts[outcome] += 1
    floor = 2 if targets >= 24 else 1
    for outcome in STAGE_OUTCOMES:
        while counts[outcome] < floor and _take_one(counts):
            counts[outcome] += 1
    outcomes = [o for o in OUTCOME_WEIGHTS for _ in range(counts[o])]
    rng.shuffle(outcomes)
    return outcomes


def _take_one(counts: dict[Outcome, int]) -> bool:
    """Move one account away from the largest bucket that can spare it."""
    donor = max(counts, key=lambda o: counts[o])
    if counts[donor] <= 2:
        return False
    counts[donor] -= 1
    return True


@dataclass(frozen=True, slots=True)
class Timeline:
    """Milestones of one journey; None where the journey never gets there."""

    outcome: Outcome
    start: datetime
    """The start of the run: nothing happens after it."""
    known: datetime
    engaged: datetime | None = None
    opportunity: datetime | None = None
    closed: datetime | None = None
    renewed: datetime | None = None
    expanded: datetime | None = None
    churned: datetime | None = None
    active_until: datetime | None = None
    """Last marketing or sales touch of a journey that never closed or was lost."""

    @property
    def presale_end(self) -> datetime:
        """End of the pre-sale conversation: the close, else the last touch, else now."""
        return self.closed or self.active_until or self.start

    @property
    def engagement_end(self) -> datetime:
        """Last moment the account engages at all (customers keep using the docs)."""
        if self.outcome in CUSTOMER_OUTCOMES:
            return self.churned or self.start
        return self.active_until or self.start


# Days before the start, as (most recent, oldest), per milestone.
_DAYS_AGO: dict[Outcome, dict[str, tuple[float, float]]] = {
    Outcome.NOT_TARGET: {},
    Outcome.TARGET: {},
    Outcome.ENGAGED: {"engaged": (20, 50), "active_until": (0.1, 4)},
    Outcome.OPPORTUNITY: {"engaged": (55, 90), "opportunity": (10, 35), "active_until": (0.1, 3)},
    Outcome.LOST: {
        "engaged": (55, 90),
        "opportunity": (35, 50),
        "closed": (8, 20),
        "active_until": (0.2, 5),
    },
    Outcome.WON: {"engaged": (70, 100), "opportunity": (40, 60), "closed": (3, 20)},
    Outcome.RETENTION: {
        "engaged": (98, 106),
        "opportunity": (80, 92),
        "closed": (58, 72),
        "renewed": (2, 20),
    },
    Outcome.EXPANSION: {
        "engaged": (98, 106),
        "opportunity": (80, 92),
        "closed": (58, 72),
        "renewed": (22, 32),
        "expanded": (1, 12),
    },
    Outcome.CHURNED: {
        "engaged": (98, 106),
        "opportunity": (80, 92),
        "closed": (58, 72),
        "churned": (2, 15),
    },
}


def make_timeline(outcome: Outcome, start: datetime, rng: random.Random) -> Timeline:
    """The group call comes first (110-120 days ago); the rest follows the outcome."""
    milestones = {
        name: start - timedelta(days=rng.uniform(recent, oldest))
        for name, (recent, oldest) in _DAYS_AGO[outcome].items()
    }
    known = start - timedelta(days=rng.uniform(HISTORY_DAYS - 10, HISTORY_DAYS))
    return Timeline(outcome, start, known, **milestones)
