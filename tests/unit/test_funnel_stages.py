"""Stage rules of the funnel's pure core: the walk forward, targeting, what is ignored."""

from __future__ import annotations

import pytest

from schemas.events import EVENT_ADAPTER, Stage, StageChanged
from services.funnel.processing import apply_event, apply_events, transition_numbers
from services.funnel.state import MAX_CLOSED_OPPORTUNITIES, ClosedOpportunity
from tests.unit.funnel_scenarios import CONFIG, ICP_FIT, T0, ev, expected_change, moves, run


def test_walk_through_all_six_stages() -> None:
    upserted = ev("account_upserted", 0, **ICP_FIT)
    visited = ev("page_viewed", 1, url="https://acme.example/blog")
    opened = ev("opportunity_created", 10, opportunity_id="o1", amount=120_000)
    won = ev("opportunity_won", 40, opportunity_id="o1")
    renewed = ev("subscription_renewed", 400, amount=130_000)
    expanded = ev("subscription_expanded", 500, amount=20_000)

    state, outputs = run([upserted, visited, opened, won, renewed, expanded])

    assert [o for o in outputs if isinstance(o, StageChanged)] == [
        expected_change(upserted, None, Stage.TARGET, "fit_above_threshold"),
        expected_change(visited, Stage.TARGET, Stage.ENGAGED, "engaged"),
        expected_change(opened, Stage.ENGAGED, Stage.OPPORTUNITY, "opportunity_opened"),
        expected_change(won, Stage.OPPORTUNITY, Stage.WON, "opportunity_won"),
        expected_change(renewed, Stage.WON, Stage.RETENTION, "renewed"),
        expected_change(expanded, Stage.RETENTION, Stage.EXPANSION, "expanded"),
    ]
    assert state is not None
    assert state.stage is Stage.EXPANSION
    assert state.stage_rule == "expanded"
    assert state.stage_since == expanded.occurred_at
    assert state.stage_cause_event_ids == (expanded.event_id,)
    assert state.furthest_stage_rank == Stage.EXPANSION.rank == 5
    assert state.stage_entered_at == {
        Stage.TARGET: upserted.occurred_at,
        Stage.ENGAGED: visited.occurred_at,
        Stage.OPPORTUNITY: opened.occurred_at,
        Stage.WON: won.occurred_at,
        Stage.RETENTION: renewed.occurred_at,
        Stage.EXPANSION: expanded.occurred_at,
    }
    assert state.open_opportunities == {}
    assert state.closed_opportunities == (ClosedOpportunity(id="o1", outcome="won"),)
    assert state.won_revenue == 120_000  # the amount of the open opportunity
    assert state.renewal_revenue == 130_000
    assert state.expansion_revenue == 20_000
    assert state.first_engaged_at == state.last_engaged_at == visited.occurred_at


def test_first_event_of_an_unknown_account_creates_a_non_target_state() -> None:
    state, outputs = run([ev("page_viewed", 0, url="/")])
    assert state is not None
    assert state.domain == "acme.com"
    assert state.fit.score == 0
    assert not state.is_target
    assert state.stage is None
    assert state.tier is None
    assert state.counters.visits == 1
    assert outputs == []


def test_explicit_targeting_and_untargeting() -> None:
    state, outputs = run(
        [
            ev("account_upserted", 0, "u1", name="Acme", target=True),
            ev("page_viewed", 1, url="/"),
            ev("account_upserted", 2, "u2", employees=20),  # target stays explicit
            ev("account_upserted", 3, "u3", target=False),
        ]
    )
    assert moves(outputs) == [
        ("target", "explicitly_targeted"),
        ("engaged", "engaged"),
        (None, "untargeted"),
    ]
    assert state is not None
    assert state.firmographics.name == "Acme"  # later upserts without a name keep it
    assert state.firmographics.employees == 20
    assert state.explicit_target is False
    assert not state.is_target


def test_fit_falling_below_the_threshold_untargets() -> None:
    _, outputs = run(
        [
            ev("account_upserted", 0, "u1", **ICP_FIT),
            ev("account_upserted", 1, "u2", industry="Mining", country="FR", employees=1),
        ]
    )
    # 100 - 25 (industry) - 15 (country) - 20 (employees) = 40 < 60
    assert moves(outputs) == [("target", "fit_above_threshold"), (None, "untargeted")]


def test_customers_keep_their_stage_when_untargeted() -> None:
    state, outputs = run(
        [
            ev("account_upserted", 0, "u1", **ICP_FIT),
            ev("opportunity_won", 1, opportunity_id="o1", amount=1),
            ev("account_upserted", 2, "u2", target=False),
        ]
    )
    assert moves(outputs) == [("target", "fit_above_threshold"), ("won", "opportunity_won")]
    assert state is not None
    assert state.stage is Stage.WON
    assert not state.is_target
    assert state.tier is None


def test_becoming_a_target_catches_up_with_known_engagement() -> None:
    _, outputs = run([ev("page_viewed", 0, url="/"), ev("account_upserted", 5, **ICP_FIT)])
    assert moves(outputs) == [("target", "fit_above_threshold"), ("engaged", "engaged")]


def test_becoming_a_target_catches_up_with_an_open_opportunity() -> None:
    state, outputs = run(
        [
            ev("page_viewed", 0, url="/"),
            ev("opportunity_created", 1, opportunity_id="o1", amount=100),
            ev("account_upserted", 5, **ICP_FIT),
        ]
    )
    assert moves(outputs) == [
        ("target", "fit_above_threshold"),
        ("opportunity", "opportunity_opened"),
    ]
    assert state is not None
    assert state.stage_entered_at.keys() == {Stage.TARGET, Stage.OPPORTUNITY}


def test_opportunity_of_a_non_target_is_recorded_without_a_stage() -> None:
    state, outputs = run([ev("opportunity_created", 0, opportunity_id="o1", amount=7)])
    assert outputs == []
    assert state is not None
    assert state.open_opportunities == {"o1": 7}
    assert state.stage is None


def test_opportunity_update_keeps_the_amount_when_none_is_given() -> None:
    state, _ = run(
        [
            ev("opportunity_created", 0, opportunity_id="o1", amount=7),
            ev("opportunity_updated", 1, opportunity_id="o1", stage="negotiation"),
            ev("opportunity_updated", 2, opportunity_id="o2"),
        ]
    )
    assert state is not None
    assert state.open_opportunities == {"o1": 7, "o2": 0}


def test_winning_more_as_a_customer_is_expansion() -> None:
    _, outputs = run(
        [
            ev("opportunity_won", 0, opportunity_id="o1", amount=10),
            ev("opportunity_created", 5, opportunity_id="o2", amount=5),
            ev("opportunity_won", 9, opportunity_id="o2"),
        ]
    )
    assert moves(outputs) == [("won", "opportunity_won"), ("expansion", "expanded_by_opportunity")]


def test_a_renewal_proves_a_customer() -> None:
    state, outputs = run([ev("subscription_renewed", 0, amount=10)])
    assert moves(outputs) == [("retention", "renewed")]
    assert state is not None
    assert state.stage is Stage.RETENTION


def test_repeated_win_of_the_same_opportunity_changes_nothing() -> None:
    state, _ = run(
        [
            ev("account_upserted", 0, **ICP_FIT),
            ev("opportunity_won", 1, "w1", opportunity_id="o1", amount=10),
        ]
    )
    again, outputs = run([ev("opportunity_won", 2, "w2", opportunity_id="o1", amount=10)], state)
    assert outputs == []
    assert again is not None
    assert again.won_revenue == 10
    assert again.stage is Stage.WON
    late, outputs = run([ev("opportunity_updated", 3, opportunity_id="o1", amount=99)], again)
    assert outputs == []
    assert late is not None
    assert late.open_opportunities == {}


def test_the_same_event_applied_twice_is_a_no_op() -> None:
    state, _ = run([ev("account_upserted", 0, **ICP_FIT)])
    renewal = ev("subscription_renewed", 1, amount=10)
    once, _ = run([renewal], state)
    twice, outputs = apply_event(once, renewal, CONFIG)
    assert twice is once
    assert outputs == []


def test_anonymous_events_are_ignored() -> None:
    anonymous = EVENT_ADAPTER.validate_python(
        {
            "type": "page_viewed",
            "event_id": "anon-1",
            "occurred_at": T0,
            "received_at": T0,
            "anonymous_id": "visitor-1",
            "source": "test",
            "url": "/pricing",
        }
    )
    assert apply_event(None, anonymous, CONFIG) == (None, [])
    state, _ = run([ev("page_viewed", 0, url="/")])
    same, outputs = apply_event(state, anonymous, CONFIG)
    assert same is state
    assert outputs == []
    assert apply_events({}, [anonymous], CONFIG) == ({}, [])


def test_bot_events_are_ignored() -> None:
    state, _ = run([ev("account_upserted", 0, **ICP_FIT)])
    same, outputs = apply_event(state, ev("page_viewed", 1, url="/", is_bot=True), CONFIG)
    assert same is state
    assert outputs == []
    assert apply_event(None, ev("page_viewed", 1, url="/", is_bot=True), CONFIG) == (None, [])


def test_the_funnels_own_outputs_are_ignored_as_inputs() -> None:
    state, outputs = run([ev("account_upserted", 0, **ICP_FIT)])
    for output in outputs:
        same, produced = apply_event(state, output, CONFIG)
        assert same is state
        assert produced == []


def test_state_of_another_account_is_refused() -> None:
    state, _ = run([ev("page_viewed", 0, url="/")])
    other = ev("page_viewed", 1, url="/", account="other.com")
    with pytest.raises(ValueError, match=r"other\.com"):
        apply_event(state, other, CONFIG)


def test_apply_events_returns_touched_accounts_and_outputs_in_input_order() -> None:
    events = [
        ev("account_upserted", 0, "a1", **ICP_FIT),
        ev("account_upserted", 0, "b1", account="beta.io", **ICP_FIT),
        ev("page_viewed", 1, "a2", url="/"),
        ev("page_viewed", 2, "b2", account="beta.io", url="/"),
    ]
    untouched, _ = run([ev("page_viewed", 0, url="/", account="gamma.org")])
    assert untouched is not None
    states = {"gamma.org": untouched}
    changed, outputs = apply_events(states, events, CONFIG)
    assert set(changed) == {"acme.com", "beta.io"}
    assert states == {"gamma.org": untouched}  # the input is not mutated
    assert [(o.account, o.cause_event_ids[0]) for o in outputs if o.type == "stage_changed"] == [
        ("acme.com", "a1"),
        ("beta.io", "b1"),
        ("acme.com", "a2"),
        ("beta.io", "b2"),
    ]
    assert changed["beta.io"].stage is Stage.ENGAGED


def test_closed_opportunities_are_bounded_oldest_first() -> None:
    events = [
        ev("opportunity_lost", i, opportunity_id=f"o{i}")
        for i in range(MAX_CLOSED_OPPORTUNITIES + 5)
    ]
    state, _ = run(events)
    assert state is not None
    assert len(state.closed_opportunities) == MAX_CLOSED_OPPORTUNITIES
    assert state.closed_opportunities[0].id == "o5"
    assert state.outcome_of("o4") is None
    assert state.outcome_of(f"o{MAX_CLOSED_OPPORTUNITIES + 4}") == "lost"


def test_transitions_are_numbered_in_the_order_made() -> None:
    """A target already engaged enters target and moves on to engaged at one moment; the
    numbers keep that order across batches and accounts, where the ids do not."""
    visited = ev("page_viewed", 0, url="/")
    upserted = ev("account_upserted", 1, target=True)
    other = EVENT_ADAPTER.validate_python(
        {"type": "account_upserted", "event_id": "b", "occurred_at": T0, "received_at": T0,
         "account": "beta.com", "source": "test", "target": True}
    )  # fmt: skip
    states, first = apply_events({}, [visited, upserted, other], CONFIG)
    kinds = [(o.account, getattr(o, "to_stage", None)) for o in first]
    assert kinds == [
        ("acme.com", Stage.TARGET),
        ("acme.com", Stage.ENGAGED),
        ("acme.com", None),  # the tier
        ("beta.com", Stage.TARGET),
        ("beta.com", None),
    ]
    assert transition_numbers(first, states) == [1, 2, 3, 1, 2]
    opened = ev("opportunity_created", 5, opportunity_id="o1")
    later, second = apply_events(states, [opened], CONFIG)
    assert isinstance(second[0], StageChanged) and second[0].to_stage is Stage.OPPORTUNITY
    assert transition_numbers(second, later) == list(range(4, 4 + len(second)))
    assert later["acme.com"].transitions_made == 3 + len(second)
