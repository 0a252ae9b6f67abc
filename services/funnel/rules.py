"""The funnel's stage rules: one function per event family, returning the moves to make.

A rule gets the state (its ``clock`` already advanced to the event) and the event, records
the event's facts, and returns the new state with the stage moves the event causes, in
order. ``processing`` applies the moves and emits one ``StageChanged`` per actual change.

Only target accounts and customers (won, retention, expansion) have a stage:

======================  =============================  =================================
rule                    event                          move
======================  =============================  =================================
fit_above_threshold     account_upserted               none -> target (by fit)
explicitly_targeted     account_upserted               none -> target (``target: true``)
untargeted              account_upserted               target/engaged/opportunity -> none
engaged                 engagement (not a bot)         target -> engaged, when the
                                                       last engagement is within
                                                       ``engagement_window_days``
                                                       of the clock (not so for a
                                                       late one whose window ran out)
engagement_lapsed       any non-engagement event       engaged -> target, when the last
                                                       engagement is older than
                                                       ``engagement_window_days``
opportunity_opened      opportunity_created/updated    target/engaged -> opportunity
opportunity_won         opportunity_won                (not a customer) -> won
expanded_by_opportunity opportunity_won                won/retention -> expansion
opportunity_lost        opportunity_lost, none open    opportunity -> engaged (engaged
                                                       within the window) or target
renewed                 subscription_renewed           any -> retention
expanded                subscription_expanded          any -> expansion
churned                 subscription_churned           customer -> target (none if not
                                                       a target)
======================  =============================  =================================

When an account becomes a target it enters ``target`` and, in the same step, moves on to
``opportunity`` (an opportunity is open) or ``engaged`` (engaged within the window).
A renewal or an expansion proves the account is a customer, so it moves even from a
non-customer stage (customers imported after they signed). Opportunities on a customer
never move it back to ``opportunity``. A closed opportunity is never reopened: a late
``opportunity_updated`` or a repeated ``opportunity_won`` / ``opportunity_lost`` changes
nothing (a won deal may still follow a lost one, to honour CRM corrections).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from schemas.events import AccountUpserted, OpportunityChanged, Stage, SubscriptionChanged
from services.funnel.config import FunnelConfig
from services.funnel.fit import Firmographics, score_fit
from services.funnel.signals import record_view_through_conversion
from services.funnel.state import (
    CUSTOMER_STAGES,
    MAX_CLOSED_OPPORTUNITIES,
    MAX_OPEN_OPPORTUNITIES,
    AccountState,
    ClosedOpportunity,
    OpportunityOutcome,
    sorted_by_key,
)


@dataclass(frozen=True, slots=True)
class Move:
    """Move the account to stage ``to`` (``None``: out of the funnel) by rule ``rule``."""

    to: Stage | None
    rule: str


Outcome = tuple[AccountState, list[Move]]

_PROSPECT_STAGES = frozenset({Stage.TARGET, Stage.ENGAGED})


def lapse_moves(state: AccountState, config: FunnelConfig) -> list[Move]:
    """engaged -> target when the last engagement is older than the engagement window."""
    if state.stage is Stage.ENGAGED and not state.engaged_within(config.engagement_window_days):
        return [Move(Stage.TARGET, "engagement_lapsed")]
    return []


def engagement_moves(state: AccountState, config: FunnelConfig) -> list[Move]:
    """target -> engaged (the engagement itself was recorded by ``signals``), when the
    account's last engagement is within the window at its clock: a late event (a backfill
    of old activity) is counted, but its window had already run out, so it moves nothing."""
    if (
        state.is_target
        and state.stage is Stage.TARGET
        and state.engaged_within(config.engagement_window_days)
    ):
        return [Move(Stage.ENGAGED, "engaged")]
    return []


def on_account_upserted(
    state: AccountState, event: AccountUpserted, config: FunnelConfig
) -> Outcome:
    """Merge the firmographics, re-score fit, and move in or out of the funnel."""
    firmographics = merge_firmographics(state.firmographics, event)
    fit = score_fit(firmographics, config.icp)
    explicit = event.target if event.target is not None else state.explicit_target
    is_target = explicit if explicit is not None else fit.score >= config.fit_threshold
    new = state.model_copy(
        update={
            "firmographics": firmographics,
            "fit": fit,
            "explicit_target": explicit,
            "is_target": is_target,
        }
    )
    rule = "explicitly_targeted" if explicit else "fit_above_threshold"
    return new, _targeting_moves(new, rule, config)


def merge_firmographics(current: Firmographics, event: AccountUpserted) -> Firmographics:
    """``current`` overwritten by the fields ``event`` knows; unknown ones never erase."""
    known: dict[str, Any] = {
        name: getattr(event, name)
        for name in Firmographics.field_names()
        if name != "technologies" and getattr(event, name) is not None
    }
    if event.technologies:
        known["technologies"] = tuple(sorted(set(event.technologies)))
    return current.model_copy(update=known)


def _targeting_moves(state: AccountState, rule: str, config: FunnelConfig) -> list[Move]:
    if state.is_target and state.stage is None:
        return [Move(Stage.TARGET, rule), *_settle_moves(state, config)]
    if not state.is_target and state.stage is not None and not state.is_customer:
        return [Move(None, "untargeted")]
    return []


def _settle_moves(state: AccountState, config: FunnelConfig) -> list[Move]:
    """Where a new target belongs beyond ``target``, from what is already known."""
    if state.open_opportunities:
        return [Move(Stage.OPPORTUNITY, "opportunity_opened")]
    if state.engaged_within(config.engagement_window_days):
        return [Move(Stage.ENGAGED, "engaged")]
    return []


def on_opportunity(state: AccountState, event: OpportunityChanged, config: FunnelConfig) -> Outcome:
    """Open, update, win or lose an opportunity."""
    if event.type == "opportunity_won":
        return _on_won(state, event)
    if event.type == "opportunity_lost":
        return _on_lost(state, event, config)
    return _on_open(state, event, config)


def _on_open(state: AccountState, event: OpportunityChanged, config: FunnelConfig) -> Outcome:
    opportunity = event.opportunity_id
    is_new = opportunity not in state.open_opportunities
    if state.outcome_of(opportunity) is not None or (
        is_new and len(state.open_opportunities) >= MAX_OPEN_OPPORTUNITIES
    ):
        return state, []
    amount = event.amount if event.amount is not None else state.open_opportunities.get(opportunity)
    opened = sorted_by_key({**state.open_opportunities, opportunity: amount or 0.0})
    new = state.model_copy(update={"open_opportunities": opened})
    if is_new:  # a new opportunity is a conversion: maybe a view-through one
        new = record_view_through_conversion(new, event.occurred_at, config)
    if new.is_target and new.stage in _PROSPECT_STAGES:
        return new, [Move(Stage.OPPORTUNITY, "opportunity_opened")]
    return new, []


def _on_won(state: AccountState, event: OpportunityChanged) -> Outcome:
    opportunity = event.opportunity_id
    if state.outcome_of(opportunity) == "won":
        return state, []
    amount = event.amount
    if amount is None:
        amount = state.open_opportunities.get(opportunity, 0.0)
    new = _close(state, opportunity, "won")
    new = new.model_copy(update={"won_revenue": state.won_revenue + amount})
    if state.is_customer:
        return new, [Move(Stage.EXPANSION, "expanded_by_opportunity")]
    return new, [Move(Stage.WON, "opportunity_won")]


def _on_lost(state: AccountState, event: OpportunityChanged, config: FunnelConfig) -> Outcome:
    opportunity = event.opportunity_id
    if state.outcome_of(opportunity) is not None:
        return state, []
    new = _close(state, opportunity, "lost")
    if new.open_opportunities or new.stage is not Stage.OPPORTUNITY:
        return new, []
    engaged = new.engaged_within(config.engagement_window_days)
    return new, [Move(Stage.ENGAGED if engaged else Stage.TARGET, "opportunity_lost")]


def _close(state: AccountState, opportunity: str, outcome: OpportunityOutcome) -> AccountState:
    """``state`` with ``opportunity`` no longer open and remembered as ``outcome``."""
    still_open = {k: v for k, v in state.open_opportunities.items() if k != opportunity}
    others = tuple(c for c in state.closed_opportunities if c.id != opportunity)
    closed = (*others, ClosedOpportunity(id=opportunity, outcome=outcome))
    return state.model_copy(
        update={
            "open_opportunities": still_open,
            "closed_opportunities": closed[-MAX_CLOSED_OPPORTUNITIES:],
        }
    )


def on_subscription(state: AccountState, event: SubscriptionChanged) -> Outcome:
    """Renewal -> retention (counted in ``renewals``: a deal cycle more), expansion ->
    expansion, churn -> back to target (or out)."""
    amount = event.amount or 0.0
    if event.type == "subscription_renewed":
        renewed = {
            "renewal_revenue": state.renewal_revenue + amount,
            "renewals": state.renewals + 1,
        }
        return state.model_copy(update=renewed), [Move(Stage.RETENTION, "renewed")]
    if event.type == "subscription_expanded":
        new = state.model_copy(update={"expansion_revenue": state.expansion_revenue + amount})
        return new, [Move(Stage.EXPANSION, "expanded")]
    new = state.model_copy(update={"churned_at": event.occurred_at})
    if state.stage not in CUSTOMER_STAGES:
        return new, []
    return new, [Move(Stage.TARGET if state.is_target else None, "churned")]
