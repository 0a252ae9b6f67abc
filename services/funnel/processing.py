"""The funnel's pure core: ``state + event -> new state + StageChanged / TierChanged``.

No clock, no I/O: every time is an event time, so replaying the same events from the same
states gives identical states and outputs (output ids are derived from the cause's id).

For one event, in order:

1. ignore it (state returned as is, no output) when it names no account (an anonymous
   visitor), comes from a bot, is the funnel's own ``StageChanged`` / ``TierChanged``,
   or was applied recently already (its id is in ``recent_event_ids``);
2. create the account's state if needed (fit 0, not a target, no stage);
3. advance the account's clock to the event time (never backwards);
4. unless the event is engagement, apply the engagement lapse (see ``rules``);
5. record the event's facts and apply its stage moves (see ``rules`` and ``signals``);
6. re-assess the tier at the clock (see ``tiers``).

Every stage move that changes the stage emits a ``StageChanged``, and every tier change
a ``TierChanged``, in that order.
"""

from __future__ import annotations

from collections.abc import Sequence

from schemas.events import (
    AccountUpserted,
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
from services.funnel.fit import Firmographics, score_fit
from services.funnel.outputs import stage_changed, tier_changed
from services.funnel.rules import Move, Outcome
from services.funnel.signals import is_engagement, record_signal, record_surge
from services.funnel.state import (
    MAX_RECENT_EVENT_IDS,
    AccountState,
    bounded_append,
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
    if _ignored(state, event) or event.account is None:
        return state, []
    if state is not None and state.domain != event.account:
        raise ValueError(f"event for {event.account!r} applied to state of {state.domain!r}")
    current = state or new_account_state(
        event.account, event.occurred_at, score_fit(Firmographics(), config.icp)
    )
    current = _advance_clock(current, event)
    lapses = [] if is_engagement(event) else rules.lapse_moves(current, config)
    current, lapsed = _apply_moves(current, lapses, event, config)
    current, moves = _handle(current, event, config)
    current, moved = _apply_moves(current, moves, event, config)
    current, retiered = _retier(current, event, config)
    return current, [*lapsed, *moved, *retiered]


def apply_events(
    states: dict[str, AccountState], events: Sequence[Event], config: FunnelConfig
) -> tuple[dict[str, AccountState], list[StageChanged | TierChanged]]:
    """Apply ``events`` in order, each to its account's state from ``states`` (not mutated).

    Returns the new state of every account whose state changed, and all outputs in the
    order of the events that caused them.
    """
    changed: dict[str, AccountState] = {}
    outputs: list[Output] = []
    for event in events:
        if event.account is None:
            continue
        before = changed.get(event.account, states.get(event.account))
        after, produced = apply_event(before, event, config)
        if after is not None and after is not before:
            changed[event.account] = after
        outputs.extend(produced)
    return changed, outputs


def _ignored(state: AccountState | None, event: Event) -> bool:
    if event.account is None or event.is_bot:
        return True
    if isinstance(event, StageChanged | TierChanged):
        return True
    return state is not None and event.event_id in state.recent_event_ids


def _advance_clock(state: AccountState, event: Event) -> AccountState:
    return state.model_copy(
        update={
            "clock": latest(state.clock, event.occurred_at),
            "recent_event_ids": bounded_append(
                state.recent_event_ids, event.event_id, MAX_RECENT_EVENT_IDS
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
    return new, rules.engagement_moves(new) if is_engagement(event) else []


def _apply_moves(
    state: AccountState, moves: list[Move], cause: Event, config: FunnelConfig
) -> tuple[AccountState, list[Output]]:
    outputs: list[Output] = []
    for move in moves:
        if move.to == state.stage:
            continue
        change = (state.stage, move.to)
        outputs.append(stage_changed(cause, state.domain, change, move.rule, config.version))
        state = _enter_stage(state, move, cause)
    return state, outputs


def _enter_stage(state: AccountState, move: Move, cause: Event) -> AccountState:
    at = cause.occurred_at
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
        }
    )


def _retier(
    state: AccountState, cause: Event, config: FunnelConfig
) -> tuple[AccountState, list[Output]]:
    assessment = assess_tier(state, config)
    if assessment.tier == state.tier:
        if assessment.rule == state.tier_rule:
            return state, []
        return state.model_copy(update={"tier_rule": assessment.rule}), []
    change = (state.tier, assessment.tier)
    output = tier_changed(cause, state.domain, change, assessment.rule, config.version)
    update = {
        "tier": assessment.tier,
        "tier_since": cause.occurred_at,
        "tier_rule": assessment.rule,
    }
    return state.model_copy(update=update), [output]
