"""The funnel's pure core: ``state + event -> new state + StageChanged / TierChanged``.

No clock, no I/O: every time is an event time, so replaying the same events from the same
states gives identical states and outputs (output ids are derived from the cause's id).

For one event, in order:

1. ignore it (state returned as is, no output) when it names no account (an anonymous
   visitor), comes from a bot, is the funnel's own ``StageChanged`` / ``TierChanged``,
   or was applied recently already (its key is in ``recent_event_keys``);
2. create the account's state if needed (fit 0, not a target, no stage);
3. apply every expiry due before the event, each at its own time (see ``expiry``):
   an engagement lapsing past its window, a tier losing its recent signals;
4. advance the account's clock to the event time (never backwards);
5. record the event's facts and apply its stage moves (see ``rules`` and ``signals``);
6. re-assess the tier at the clock (see ``tiers``).

Moves and tier changes happen at the account's clock: the event's time, or the clock's
when the event is late, so an account's history is in time order whatever the order its
events arrive in.

A ``ClockTicked`` applies step 3 alone, at the tick's time, to the accounts of its
partition whose next expiry is due (at most ``max_expiries_per_tick``, earliest first):
accounts lapse on time without events of their own, and with the same outputs as if the
expiry had waited for their next event.

Every stage move that changes the stage emits a ``StageChanged``, and every tier change
a ``TierChanged``, in that order; ``transitions_made`` counts them, so that storage keeps
the order of those made at one moment (``transition_numbers``). ``apply_events_with_facts``
also derives each applied event's KPI facts (``facts``) from the states before and after it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from schemas import topics
from schemas.envelope import Envelope
from schemas.events import (
    AccountUpserted,
    ClockTicked,
    Event,
    OpportunityChanged,
    StageChanged,
    SubscriptionChanged,
    SurgeEnded,
    SurgeStarted,
    TierChanged,
)
from services.funnel import rules
from services.funnel.config import FunnelConfig
from services.funnel.expiry import due_at, expiry_cause
from services.funnel.facts import Fact, facts_of
from services.funnel.fit import Firmographics, score_fit
from services.funnel.outputs import stage_changed, tier_changed
from services.funnel.rules import Move, Outcome
from services.funnel.scoring import refreshed_scores
from services.funnel.signals import is_engagement, record_signal, record_surge
from services.funnel.state import (
    MAX_RECENT_EVENT_KEYS,
    AccountState,
    bounded_append,
    event_key,
    latest,
    new_account_state,
)
from services.funnel.tiers import assess_tier

Output = StageChanged | TierChanged


def apply_event(
    state: AccountState | None, event: Event, config: FunnelConfig
) -> tuple[AccountState | None, list[StageChanged | TierChanged]]:
    """Apply one event to its account's state (``None``: not seen yet).

    Raises ``ValueError`` when ``state`` belongs to another account than the event.
    """
    if _ignored(event) or event.account is None:
        return state, []
    key = event_key(event.event_id)  # hashed once: the duplicate check, then the clock
    if state is not None and key in state.recent_event_keys:
        return state, []
    if state is not None and state.domain != event.account:
        raise ValueError(f"event for {event.account!r} applied to state of {state.domain!r}")
    current = state or new_account_state(
        event.account, event.occurred_at, score_fit(Firmographics(), config.icp)
    )
    current, expired = expire(current, event.occurred_at, config)
    current = _advance_clock(current, event, key)
    current, moves = _handle(current, event, config)
    current, moved = _apply_moves(current, moves, event, config)
    current, retiered = _retier(current, event, config)
    return current, [*expired, *moved, *retiered]


def expire(
    state: AccountState, until: datetime, config: FunnelConfig
) -> tuple[AccountState, list[Output]]:
    """``state`` with every expiry due at or before ``until`` applied, in time order."""
    outputs: list[Output] = []
    while (due := due_at(state, config)) is not None and due <= until:
        cause = expiry_cause(state.domain, due)
        # The scores age with the windows: e.g. the engagement score drops as it runs out.
        moved_on = {"clock": due}
        scores = refreshed_scores(state, moved_on, config)
        state = state.model_copy(update={**moved_on, "scores": scores})
        state, lapsed = _apply_moves(state, rules.lapse_moves(state, config), cause, config)
        state, retiered = _retier(state, cause, config)
        outputs += [*lapsed, *retiered]
    return state, outputs


def sweep(
    states: Mapping[str, AccountState], tick: ClockTicked, config: FunnelConfig
) -> tuple[dict[str, AccountState], list[Output]]:
    """The expiries a tick applies: the due accounts of its partition, earliest first."""
    due = sorted(
        (moment, domain)
        for domain, state in states.items()
        if (moment := due_at(state, config)) is not None
        and moment <= tick.occurred_at
        and topics.partition_of(domain, topics.EVENTS.partitions) == tick.partition
    )
    changed: dict[str, AccountState] = {}
    outputs: list[Output] = []
    for _, domain in due[: config.max_expiries_per_tick]:
        changed[domain], expired = expire(states[domain], tick.occurred_at, config)
        outputs += expired
    return changed, outputs


def apply_events(
    states: dict[str, AccountState], events: Sequence[Event], config: FunnelConfig
) -> tuple[dict[str, AccountState], list[StageChanged | TierChanged]]:
    """Apply ``events`` in order, each to its account's state from ``states`` (not mutated).

    Returns the new state of every account whose state changed, and all outputs in the
    order of the events that caused them.
    """
    changed, outputs, _ = apply_events_with_facts(states, events, config)
    return changed, outputs


def apply_events_with_facts(
    states: Mapping[str, AccountState], events: Sequence[Event], config: FunnelConfig
) -> tuple[dict[str, AccountState], list[StageChanged | TierChanged], list[Fact]]:
    """``apply_events``, plus the KPI facts of every event applied (see ``facts``), in the
    order of the events."""
    changed: dict[str, AccountState] = {}
    outputs: list[Output] = []
    facts: list[Fact] = []
    for event in events:
        if isinstance(event, ClockTicked):
            swept, expired = sweep({**states, **changed}, event, config)
            changed.update(swept)
            outputs.extend(expired)
            continue
        if event.account is None:
            facts.extend(facts_of(event, None, None))
            continue
        before = changed.get(event.account, states.get(event.account))
        after, produced = apply_event(before, event, config)
        if after is not None and after is not before:
            changed[event.account] = after
        outputs.extend(produced)
        facts.extend(facts_of(event, before, after))
    return changed, outputs, facts


def transition_numbers(
    outputs: Sequence[Output], states: Mapping[str, AccountState]
) -> list[int | None]:
    """Each output's number among its account's transitions (``transitions_made`` just
    after it), counted back from ``states``: the accounts' states after all of ``outputs``.
    None for an account missing from ``states``.

    The moves one moment makes (a new target entering ``target`` and moving on to
    ``engaged``) share a time, and their ids sort at random: the number orders them.
    """
    made = {domain: state.transitions_made for domain, state in states.items()}
    numbers: list[int | None] = []
    for output in reversed(outputs):
        domain = output.account or ""
        number = made.get(domain)
        numbers.append(number)
        if number is not None:
            made[domain] = number - 1
    return numbers[::-1]


def _ignored(event: Event) -> bool:
    """Events the funnel never applies, whatever the state (recent repeats aside)."""
    return event.account is None or event.is_bot or isinstance(event, StageChanged | TierChanged)


def _advance_clock(state: AccountState, event: Event, key: str) -> AccountState:
    return state.model_copy(
        update={
            "clock": latest(state.clock, event.occurred_at),
            "recent_event_keys": bounded_append(
                state.recent_event_keys, key, MAX_RECENT_EVENT_KEYS
            ),
        }
    )


def _handle(state: AccountState, event: Event, config: FunnelConfig) -> Outcome:
    """Record the event's facts and say which stage moves it causes."""
    if isinstance(event, AccountUpserted):
        return rules.on_account_upserted(state, event, config)
    if isinstance(event, OpportunityChanged):
        return rules.on_opportunity(state, event, config)
    if isinstance(event, SubscriptionChanged):
        return rules.on_subscription(state, event)
    if isinstance(event, SurgeStarted | SurgeEnded):
        return record_surge(state, event), []
    new = record_signal(state, event, config)
    return new, rules.engagement_moves(new, config) if is_engagement(event) else []


def _apply_moves(
    state: AccountState, moves: list[Move], cause: Envelope, config: FunnelConfig
) -> tuple[AccountState, list[Output]]:
    outputs: list[Output] = []
    for move in moves:
        if move.to == state.stage:
            continue
        change = (state.stage, move.to)
        outputs.append(
            stage_changed(cause, state.domain, change, move.rule, config.version, state.clock)
        )
        state = _enter_stage(state, move, cause)
    return state, outputs


def _enter_stage(state: AccountState, move: Move, cause: Envelope) -> AccountState:
    # At the clock, not the cause's time: a late cause must not date the move before the
    # account's previous one (history out of order, negative time in stage).
    at = state.clock
    entered = state.stage_entered_at
    furthest = state.furthest_stage_rank
    if move.to is not None:
        furthest = max(furthest, move.to.rank)
        if move.to not in entered:
            entered = dict(sorted({**entered, move.to: at}.items(), key=lambda i: i[0].rank))
    return state.model_copy(
        update={
            "stage": move.to,
            "stage_since": at,
            "stage_rule": move.rule,
            "stage_cause_event_ids": (cause.event_id,),
            "furthest_stage_rank": furthest,
            "stage_entered_at": entered,
            "transitions_made": state.transitions_made + 1,
        }
    )


def _retier(
    state: AccountState, cause: Envelope, config: FunnelConfig
) -> tuple[AccountState, list[Output]]:
    assessment = assess_tier(state, config)
    if assessment.tier == state.tier:
        if assessment.rule == state.tier_rule:
            return state, []
        return state.model_copy(update={"tier_rule": assessment.rule}), []
    change = (state.tier, assessment.tier)
    output = tier_changed(cause, state.domain, change, assessment.rule, config.version, state.clock)
    update = {
        "tier": assessment.tier,
        "tier_since": state.clock,
        "tier_rule": assessment.rule,
        "transitions_made": state.transitions_made + 1,
    }
    return state.model_copy(update=update), [output]
