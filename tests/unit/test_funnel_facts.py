"""The KPI facts the funnel's pure core derives from each applied event."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, date, datetime, timedelta, timezone
from typing import Any

from schemas.events import (
    AccountUpserted,
    AdInteracted,
    CampaignSpent,
    ChatOccurred,
    EmailActivity,
    Event,
    MeetingHeld,
    NpsSubmitted,
    OpportunityChanged,
    PageViewed,
    SubscriptionChanged,
    SurgeStarted,
)
from services.funnel.config import FunnelConfig
from services.funnel.facts import (
    ActivityFact,
    NpsFact,
    RevenueFact,
    SpendFact,
    activity_increments,
)
from services.funnel.fit import FitScore
from services.funnel.processing import apply_events, apply_events_with_facts
from services.funnel.state import Counters, new_account_state
from services.kit.tables import ACTIVITY_COUNTERS, activity_daily

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)
ACME = "acme.com"


def at(hours: float) -> datetime:
    return T0 + timedelta(hours=hours)


def common(event_id: str, hours: float, **kw: Any) -> dict[str, Any]:
    return {
        "event_id": event_id,
        "occurred_at": at(hours),
        "received_at": at(hours),
        "account": ACME,
        "source": "test",
        **kw,
    }


def surge(event_id: str, hours: float, topic: str) -> SurgeStarted:
    return SurgeStarted(
        **common(event_id, hours),
        topic=topic,
        score=80,
        baseline=1,
        observed=9,
        detector_version="t",
    )


SCENARIO: list[Event] = [
    AccountUpserted(**common("u1", 0), target=True),
    AdInteracted(**common("i1", 1), type="ad_impressed", campaign_id="c1"),
    PageViewed(**common("p1", 2), url="https://v.io/blog"),  # a view-through visit
    AdInteracted(**common("c1", 3), type="ad_clicked", campaign_id="c1"),
    PageViewed(**common("p2", 4), url="https://v.io/pricing"),  # high value
    PageViewed(**common("p2", 4), url="https://v.io/pricing"),  # the same event again
    PageViewed(**common("bot", 4), url="https://v.io/", is_bot=True),
    ChatOccurred(**common("ch1", 5), type="chat_started"),
    EmailActivity(**common("m1", 6), type="email_sent"),
    EmailActivity(**common("m2", 7), type="email_replied", direction="inbound"),
    MeetingHeld(**common("mt1", 8)),
    surge("s1", 9, "web"),
    surge("s2", 10, "crm-software"),
    OpportunityChanged(
        **common("o1", 24), type="opportunity_created", opportunity_id="A", amount=1000
    ),
    OpportunityChanged(**common("o2", 48), type="opportunity_won", opportunity_id="A", amount=1200),
    OpportunityChanged(
        **common("o3", 49), type="opportunity_won", opportunity_id="A", amount=1200
    ),  # a repeat: not a second deal
    SubscriptionChanged(
        **common("r1", 72), type="subscription_renewed", amount=500, term_end=date(2027, 3, 1)
    ),
    SubscriptionChanged(**common("x1", 73), type="subscription_expanded", amount=200),
    NpsSubmitted(**common("n1", 74), score=9),
    CampaignSpent(
        **common("sp1", 75),
        channel="display",
        amount=300.0,
        period_start=date(2026, 3, 1),
        period_end=date(2026, 3, 31),
    ),
    CampaignSpent(**common("sp2", 76, account=None), channel="events", amount=99.0),
]


def run() -> tuple[Any, list[Any]]:
    states, _, facts = apply_events_with_facts({}, SCENARIO, FunnelConfig())
    return states, facts


def test_activity_facts_sum_to_the_final_counters() -> None:
    states, facts = run()
    summed: Counter[str] = Counter()
    for fact in facts:
        if isinstance(fact, ActivityFact):
            summed.update(fact.counts)
    final = states[ACME].counters.model_dump()
    assert {name: summed[name] for name in final} == final


def test_activity_facts_by_hand() -> None:
    _, facts = run()
    activity = [f for f in facts if isinstance(f, ActivityFact)]
    summed: Counter[str] = Counter()
    for fact in activity:
        summed.update(fact.counts)
    # impression, 2 visits (one view-through, one high value; the repeat and the bot are
    # not counted), click, chat, an email sent and one replied, a meeting: 8 touches;
    # engagements: 2 visits, click, chat, reply, meeting = 6; two surges, one on the web.
    assert summed["ad_impressions"] == 1
    assert (summed["visits"], summed["view_through_visits"], summed["high_value_visits"]) == (
        2,
        1,
        1,
    )
    assert (summed["ad_clicks"], summed["chats"], summed["meetings"]) == (1, 1, 1)
    assert (summed["emails"], summed["emails_sent"]) == (1, 1)
    assert summed["touches"] == 8
    assert summed["engagements"] == 6
    assert (summed["surges"], summed["web_research_spikes"]) == (2, 1)
    assert {f.day for f in activity} == {date(2026, 3, 2)}
    # every activity fact is of a target (upserted first) not yet tiered as a customer
    assert all(f.who.is_target and not f.who.is_customer for f in activity)


def test_revenue_facts_come_once_per_deal_with_the_cohort_before() -> None:
    _, facts = run()
    revenue = [
        (f.kind, f.amount, f.term_end, f.who.is_customer)
        for f in facts
        if isinstance(f, RevenueFact)
    ]
    assert revenue == [
        ("new", 1200.0, None, False),
        ("renewal", 500.0, date(2027, 3, 1), True),
        ("expansion", 200.0, None, True),
    ]


def test_nps_and_spend_facts() -> None:
    _, facts = run()
    [nps] = [f for f in facts if isinstance(f, NpsFact)]
    assert (nps.event_id, nps.score, nps.who.domain) == ("n1", 9, ACME)
    with_account, without = [f for f in facts if isinstance(f, SpendFact)]
    assert (with_account.who.domain, with_account.amount) == (ACME, 300.0)
    assert (with_account.period_start, with_account.period_end) == (
        date(2026, 3, 1),
        date(2026, 3, 31),
    )
    # no account, no period: the day it was reported
    assert (without.who.domain, without.who.tier, without.amount) == (None, None, 99.0)
    assert (without.period_start, without.period_end) == (date(2026, 3, 5),) * 2


def test_a_churn_is_a_lifecycle_fact_of_amount_zero() -> None:
    churn = SubscriptionChanged(
        **common("ch", 80), type="subscription_churned", term_end=date(2026, 3, 31)
    )
    _, _, facts = apply_events_with_facts({}, [*SCENARIO, churn], FunnelConfig())
    last = facts[-1]
    assert isinstance(last, RevenueFact)
    assert (last.kind, last.amount, last.term_end) == ("churn", 0.0, date(2026, 3, 31))


def test_apply_events_is_unchanged_by_the_facts() -> None:
    states, outputs, _ = apply_events_with_facts({}, SCENARIO, FunnelConfig())
    assert (states, outputs) == apply_events({}, SCENARIO, FunnelConfig())


def test_every_counter_has_a_column() -> None:
    """A counter added to ``Counters`` needs its column in activity_daily (and 0007+)."""
    assert set(Counters.field_names()) <= set(ACTIVITY_COUNTERS)
    assert set(ACTIVITY_COUNTERS) <= set(activity_daily.c.keys())


def test_an_attribution_alone_is_no_touch() -> None:
    before = new_account_state(ACME, T0, FitScore())
    after = before.model_copy(update={"counters": before.counters.plus(view_through_conversions=1)})
    won = OpportunityChanged(**common("o9", 1), type="opportunity_created", opportunity_id="Z")
    assert activity_increments(won, before, after) == {"view_through_conversions": 1}


def test_activity_and_spend_fall_on_their_utc_day() -> None:
    """KPI periods are UTC days: 01:00 on 1 March at UTC+5 is 20:00 on 28 February, UTC."""
    sent = datetime(2026, 3, 1, 1, tzinfo=timezone(timedelta(hours=5)))
    when = {"occurred_at": sent, "received_at": sent, "source": "test"}
    visit = PageViewed(event_id="east-visit", account=ACME, url="https://v.io/", **when)
    spend = CampaignSpent(event_id="east-spend", channel="display", amount=10.0, **when)
    _, _, facts = apply_events_with_facts({}, [visit, spend], FunnelConfig())
    [activity] = [f for f in facts if isinstance(f, ActivityFact)]
    [spent] = [f for f in facts if isinstance(f, SpendFact)]
    assert activity.day == date(2026, 2, 28)
    assert (spent.period_start, spent.period_end) == (date(2026, 2, 28), date(2026, 2, 28))
