"""Moves back down the funnel: engagement lapsing, lost opportunities, churn."""

from __future__ import annotations

from datetime import timedelta

from schemas.events import Stage, StageChanged
from schemas.kpis import is_regression
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_event
from services.funnel.state import AccountState
from tests.unit.funnel_scenarios import ICP_FIT, T0, ev, moves, run


def test_engagement_lapses_back_to_target_past_the_window() -> None:
    state, _ = run([ev("account_upserted", 0, **ICP_FIT), ev("page_viewed", 1, url="/")])
    # Exactly 90 days after the last engagement: still within the window.
    state, outputs = run([ev("intent_signal_received", 91, topic="crm")], state)
    assert moves(outputs) == []
    # 91 days after: lapsed, evaluated before the event is applied.
    state, outputs = run([ev("intent_signal_received", 92, topic="crm")], state)
    assert moves(outputs) == [("target", "engagement_lapsed")]
    assert state is not None
    assert state.stage is Stage.TARGET
    # Engaging again moves it back up.
    state, outputs = run([ev("chat_started", 93)], state)
    assert moves(outputs) == [("engaged", "engaged")]


def test_an_engagement_past_the_window_lapses_at_the_window_end_then_reengages() -> None:
    state, _ = run([ev("account_upserted", 0, **ICP_FIT), ev("page_viewed", 1, url="/")])
    state, outputs = run([ev("page_viewed", 200, url="/")], state)
    stage_changes = [o for o in outputs if o.type == "stage_changed"]
    assert moves(outputs) == [("target", "engagement_lapsed"), ("engaged", "engaged")]
    # The lapse happened when the window ran out (day 1 + 90 days), not on day 200.
    lapse_end = T0 + timedelta(days=91, microseconds=1)
    assert [o.occurred_at for o in stage_changes] == [lapse_end, T0 + timedelta(days=200)]
    assert state is not None
    assert state.stage is Stage.ENGAGED
    assert state.last_engaged_at == T0 + timedelta(days=200)


def test_a_late_engagement_past_its_window_is_counted_but_moves_nothing() -> None:
    """A backfill of old activity: an account at day 200 receives a visit of day 100. At
    its clock the visit's window ran out on day 190, so the account stays a target (no
    engaged-then-lapsed pair of changes pushed to sales tools); a late visit still within
    the window does move it."""
    state, _ = run(
        [ev("account_upserted", 0, **ICP_FIT), ev("intent_signal_received", 200, topic="crm")]
    )
    state, outputs = run([ev("page_viewed", 100, url="/")], state)
    assert moves(outputs) == []
    assert state is not None
    assert state.stage is Stage.TARGET
    assert state.counters.visits == 1 and state.last_engaged_at == T0 + timedelta(days=100)
    state, outputs = run([ev("page_viewed", 150, url="/")], state)
    assert moves(outputs) == [("engaged", "engaged")]
    assert state is not None
    # It moves now, at the account's clock (day 200), not back on day 150.
    [change] = [o for o in outputs if o.type == "stage_changed"]
    assert change.occurred_at == state.stage_since == T0 + timedelta(days=200)
    assert state.stage_entered_at[Stage.ENGAGED] == T0 + timedelta(days=200)


def test_a_late_cause_never_dates_a_move_before_the_previous_one() -> None:
    """A churned customer (back to target on day 100) receives an email reply of day 95,
    late: it re-engages on day 100. Dated day 95, the history would put engaged before
    the churn that preceded it, and the time in target would be negative."""
    state, _ = run(
        [
            ev("account_upserted", 0, **ICP_FIT),
            ev("opportunity_created", 10, opportunity_id="o1", amount=10),
            ev("opportunity_won", 20, opportunity_id="o1"),
            ev("subscription_churned", 100, subscription_id="s1", amount=10),
        ]
    )
    assert state is not None and state.stage is Stage.TARGET
    churned_at = state.stage_since
    state, outputs = run([ev("email_replied", 95)], state)
    assert moves(outputs) == [("engaged", "engaged")]
    assert state is not None and state.stage_since == churned_at == T0 + timedelta(days=100)
    assert all(o.occurred_at == T0 + timedelta(days=100) for o in outputs)


def test_lapse_then_opportunity_in_one_event() -> None:
    state, _ = run([ev("account_upserted", 0, **ICP_FIT), ev("page_viewed", 1, url="/")])
    _, outputs = run([ev("opportunity_created", 120, opportunity_id="o1", amount=1)], state)
    assert moves(outputs) == [
        ("target", "engagement_lapsed"),
        ("opportunity", "opportunity_opened"),
    ]


def test_lost_opportunity_goes_back_to_engaged_when_engaged_recently() -> None:
    state, _ = run(
        [
            ev("account_upserted", 0, **ICP_FIT),
            ev("email_replied", 1),
            ev("opportunity_created", 2, opportunity_id="o1", amount=10),
            ev("opportunity_created", 3, opportunity_id="o2", amount=20),
        ]
    )
    state, outputs = run([ev("opportunity_lost", 20, opportunity_id="o1")], state)
    assert moves(outputs) == []  # o2 is still open
    state, outputs = run([ev("opportunity_lost", 30, opportunity_id="o2")], state)
    assert moves(outputs) == [("engaged", "opportunity_lost")]
    assert state is not None
    assert state.open_opportunities == {}
    assert [(c.id, c.outcome) for c in state.closed_opportunities] == [
        ("o1", "lost"),
        ("o2", "lost"),
    ]


def test_lost_opportunity_goes_back_to_target_without_recent_engagement() -> None:
    state, outputs = run(
        [
            ev("account_upserted", 0, **ICP_FIT),
            ev("opportunity_created", 2, opportunity_id="o1", amount=10),
            ev("opportunity_lost", 30, opportunity_id="o1"),
        ]
    )
    assert moves(outputs) == [
        ("target", "fit_above_threshold"),
        ("opportunity", "opportunity_opened"),
        ("target", "opportunity_lost"),
    ]
    assert state is not None
    assert state.furthest_stage_rank == Stage.OPPORTUNITY.rank


def test_churn_sends_a_target_customer_back_to_target() -> None:
    state, _ = run(
        [
            ev("account_upserted", 0, **ICP_FIT),
            ev("opportunity_won", 10, opportunity_id="o1", amount=50_000),
        ]
    )
    state, outputs = run([ev("subscription_churned", 380)], state)
    assert moves(outputs) == [("target", "churned")]
    assert state is not None
    assert state.churned_at == T0 + timedelta(days=380)
    assert state.furthest_stage_rank == Stage.WON.rank


def test_churn_of_a_customer_that_is_not_a_target_leaves_the_funnel() -> None:
    state, outputs = run(
        [
            ev("opportunity_won", 10, opportunity_id="o1", amount=5),
            ev("subscription_churned", 380),
        ]
    )
    assert moves(outputs) == [("won", "opportunity_won"), (None, "churned")]
    assert state is not None
    assert state.stage is None


def test_churn_of_a_prospect_records_it_without_a_move() -> None:
    state, outputs = run([ev("account_upserted", 0, **ICP_FIT), ev("subscription_churned", 5)])
    assert moves(outputs) == [("target", "fit_above_threshold")]
    assert state is not None
    assert state.churned_at == T0 + timedelta(days=5)


def test_the_engagement_window_is_configurable() -> None:
    """Engaged on day 1: with the default 90-day window still engaged on day 12; with a
    10-day window it lapsed when the window ran out, on day 11."""
    events = [
        ev("account_upserted", 0, **ICP_FIT),
        ev("page_viewed", 1, url="/"),
        ev("intent_signal_received", 12, topic="crm"),
    ]
    default, _ = run(events)
    assert default is not None and default.stage is Stage.ENGAGED

    state: AccountState | None = None
    changes: list[StageChanged] = []
    for event in events:
        state, outputs = apply_event(state, event, FunnelConfig(engagement_window_days=10))
        changes += [o for o in outputs if isinstance(o, StageChanged)]
    assert state is not None and state.stage is Stage.TARGET
    lapse = changes[-1]
    assert (lapse.from_stage, lapse.to_stage, lapse.rule) == (
        Stage.ENGAGED,
        Stage.TARGET,
        "engagement_lapsed",
    )
    assert lapse.occurred_at == T0 + timedelta(days=11, microseconds=1)


def test_a_renewal_after_an_expansion_is_no_regression() -> None:
    """won -> expansion (a second deal) -> retention (the renewal): the account stayed a
    customer throughout; its churn afterwards is the one move back down."""
    _, outputs = run(
        [
            ev("account_upserted", 0, **ICP_FIT),
            ev("opportunity_won", 10, opportunity_id="o1", amount=50_000),
            ev("opportunity_won", 100, opportunity_id="o2", amount=10_000),
            ev("subscription_renewed", 375, amount=60_000),
            ev("subscription_churned", 740),
        ]
    )
    history = [(o.from_stage, o.to_stage) for o in outputs if isinstance(o, StageChanged)]
    assert history == [
        (None, Stage.TARGET),
        (Stage.TARGET, Stage.WON),
        (Stage.WON, Stage.EXPANSION),
        (Stage.EXPANSION, Stage.RETENTION),
        (Stage.RETENTION, Stage.TARGET),
    ]
    assert [move for move in history if is_regression(*move)] == [(Stage.RETENTION, Stage.TARGET)]
