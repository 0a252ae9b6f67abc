"""`abm replay`: rebuild the funnel from history with the pure core, under any configuration,
and compare with the live state: back-testing a rule or threshold change before it ships.

Deterministic: the two topics the funnel consumes (events and surges), or an exported
file of them, are applied in one order that depends on the records alone, not on how the
fetches interleaved them (see ``replay_order``): every partition in offset order, the
partitions merged by the ``received_at`` of their next record, events before surges at
equal times, so each surge right after the event that caused it. Events are de-duplicated
by id (as the consumer does); per-account order is what it was on the topic, so the result
is the one the consumer would reach from empty state with that configuration.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

from pydantic import ValidationError

from schemas.events import Event, StageChanged, TierChanged, decode_event
from services.funnel import kpis
from services.funnel.config import FunnelConfig
from services.funnel.facts import Fact
from services.funnel.processing import apply_events_with_facts
from services.funnel.state import AccountState


@dataclass
class Replay:
    """A replay's result so far: empty to start with."""

    states: dict[str, AccountState] = field(default_factory=dict)
    transitions: int = 0
    applied: int = 0
    duplicates: int = 0
    undecodable: int = 0
    outputs: list[StageChanged | TierChanged] = field(default_factory=list)
    """Every stage and tier change, in order; kept only when asked (``history=True``)."""


@dataclass(frozen=True)
class Comparison:
    """How the replayed state differs from the live one, account by account."""

    accounts: int
    stage_changes: Counter[tuple[str | None, str | None]] = field(default_factory=Counter)
    tier_changes: Counter[tuple[int | None, int | None]] = field(default_factory=Counter)


@dataclass(frozen=True)
class ReplayBatch:
    """One batch of a replay: its events (de-duplicated), what the pure core made of them
    (the states they changed, the stage and tier changes, the KPI facts)."""

    events: list[Event]
    changed: dict[str, AccountState]
    outputs: list[StageChanged | TierChanged]
    facts: list[Fact]


def replay(
    events: Iterable[bytes | Event],
    config: FunnelConfig,
    batch: int = 5000,
    history: bool = False,
) -> Replay:
    """Apply ``events`` (encoded, or decoded already) in the order given, from empty
    state; ``history``: keep the outputs too. For the topics' or a file's records, give
    them in replay order (``replay_order.in_replay_order``)."""
    result = Replay()
    for applied in replay_batches(events, config, result, batch):
        if history:
            result.outputs += applied.outputs
    return result


def replay_batches(
    events: Iterable[bytes | Event], config: FunnelConfig, result: Replay, batch: int = 5000
) -> Iterator[ReplayBatch]:
    """``replay`` batch by batch, keeping ``result`` up to date (its states, its counts;
    not its outputs): for a caller that writes each batch somewhere (``abm replay
    --into``)."""
    seen: set[str] = set()
    for chunk in _chunks(_decoded(events, result), batch):
        fresh: list[Event] = []
        for event in chunk:
            if event.event_id in seen:
                result.duplicates += 1
                continue
            seen.add(event.event_id)
            fresh.append(event)
        changed, outputs, facts = apply_events_with_facts(result.states, fresh, config)
        result.states.update(changed)
        result.applied += len(fresh)
        result.transitions += len(outputs)
        yield ReplayBatch(fresh, changed, outputs, facts)


def compare(
    replayed: dict[str, AccountState], live: dict[str, tuple[str | None, int | None]]
) -> Comparison:
    """``live``: domain -> (stage, tier) now. Accounts only on one side count as changes."""
    comparison = Comparison(accounts=len(set(replayed) | set(live)))
    for domain in set(replayed) | set(live):
        state = replayed.get(domain)
        stage = state.stage.value if state and state.stage else None
        tier = state.tier if state else None
        before_stage, before_tier = live.get(domain, (None, None))
        if stage != before_stage:
            comparison.stage_changes[(before_stage, stage)] += 1
        if tier != before_tier:
            comparison.tier_changes[(before_tier, tier)] += 1
    return comparison


def read_event_file(path: Path) -> Iterator[bytes]:
    """One event per line, as the topic carries them (JSON), each partition's in offset
    order; replay puts them in replay order (``replay_order.file_records``)."""
    with path.open("rb") as lines:
        yield from (line.strip() for line in lines if line.strip())


def summary(result: Replay) -> dict[str, object]:
    stages = Counter(s.stage.value for s in result.states.values() if s.stage)
    tiers = Counter(s.tier for s in result.states.values() if s.tier)
    return {
        "applied": result.applied,
        "duplicates": result.duplicates,
        "undecodable": result.undecodable,
        "accounts": len(result.states),
        "transitions": result.transitions,
        "stages": dict(sorted(stages.items())),
        "tiers": {str(t): n for t, n in sorted(tiers.items())},
        "funnel": funnel_snapshot(result.states.values()),
    }


def funnel_snapshot(states: Iterable[AccountState]) -> dict[str, object]:
    """The KPIs the replayed states tell by themselves, of the target accounts (as the
    API's funnel counts): what a back-tested rule or threshold does to the funnel. The
    KPIs of a period (win rate, cost per account, ...) need the facts: ``--into``."""
    targets = [state for state in states if state.is_target]
    return {
        "targets": len(targets),
        "targets_per_tier": {str(t): n for t, n in kpis.tier_counts(targets).items()},
        "engaged_or_beyond_share": kpis.targets_engaged_or_beyond_share(targets),
        "pipeline": kpis.pipeline_amount(targets),
        "conversions": {
            f"{c.from_stage}->{c.to_stage}": c.rate for c in kpis.stage_conversions(targets)
        },
    }


def render_comparison(comparison: Comparison) -> str:
    lines = [f"{comparison.accounts:,} accounts compared with the live state"]
    for (before, after), n in comparison.stage_changes.most_common():
        lines.append(f"  stage {before or 'none'} -> {after or 'none'}: {n:,}")
    for (before_tier, after_tier), n in comparison.tier_changes.most_common():
        lines.append(f"  tier {before_tier or 'none'} -> {after_tier or 'none'}: {n:,}")
    if len(lines) == 1:
        lines.append("  identical stages and tiers")
    return "\n".join(lines)


def _decoded(events: Iterable[bytes | Event], result: Replay) -> Iterator[Event]:
    for raw in events:
        if not isinstance(raw, bytes):
            yield raw
            continue
        try:
            yield decode_event(raw)
        except ValidationError:
            result.undecodable += 1


def _chunks(events: Iterator[Event], size: int) -> Iterator[list[Event]]:
    chunk: list[Event] = []
    for event in events:
        chunk.append(event)
        if len(chunk) >= size:
            yield chunk
            chunk = []
    if chunk:
        yield chunk


def dump_states(states: dict[str, AccountState], path: Path) -> None:
    with path.open("w") as out:
        for domain in sorted(states):
            out.write(states[domain].model_dump_json() + "\n")
