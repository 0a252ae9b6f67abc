"""Turn a ``Plan`` into one account's Segment calls.

Layers, each written independently and then merged by time: firmographics (the ``group``
call, always first), account-based ads, website visits (with an optional web research
spike), third-party intent, and the contact-level layers in ``sales``.
"""

from __future__ import annotations

import random
from datetime import datetime, timedelta

from services.simulate import sales
from services.simulate.campaigns import Campaign, pick_campaign
from services.simulate.plan import Plan, Visitor, between
from services.simulate.segment import Draft, DraftLog, Who, group_call, track_call
from services.simulate.site import LANDING, pick_page, pick_referrer, visit
from services.simulate.timeline import CUSTOMER_OUTCOMES, ENGAGED_OUTCOMES, Outcome

HIGH_VALUE_SHARE = {Outcome.ENGAGED: 0.15, Outcome.NOT_TARGET: 0.05, Outcome.TARGET: 0.05}
OUR_TOPICS = (
    "account-based marketing", "intent data", "b2b marketing attribution",
    "sales engagement", "revenue operations", "website personalization",
)  # fmt: skip
COMPETITOR_TOPICS = ("abm platform alternatives", "switching abm vendor")
INTENT_SOURCES = ("bombora", "g2")
# A quiet target's visits end this long before the run: past the funnel's default
# engagement window (90 days), so the account engaged once and lapsed back to target.
LAPSED_DAYS = 100


def write_journey(plan: Plan, rng: random.Random) -> list[Draft]:
    """Every call of the journey up to the start of the run, not yet in time order."""
    log = DraftLog(until=plan.start)
    log.add(group_call(plan.timeline.known, plan.system, plan.domain, plan.account.traits()))
    if plan.account.is_target:
        _ads(log, plan, rng)
        _intent(log, plan, rng)
    _web_visits(log, plan, rng)
    _research_spike(log, plan, rng)
    sales.write_contacts(log, plan, rng)
    sales.write_deal(log, plan, rng)
    return log.drafts


def _web_visits(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """Browsing while engaged; scattered for non-targets; lapsed long ago for some targets."""
    tl, outcome = plan.timeline, plan.outcome
    low, high, count = tl.known + timedelta(days=1), tl.start, rng.randint(0, 5)
    if outcome is Outcome.TARGET:
        high = tl.start - timedelta(days=LAPSED_DAYS)
        count = rng.randint(2, 5) if rng.random() < 0.4 and high > low else 0
    elif outcome in ENGAGED_OUTCOMES and tl.engaged is not None:
        low, high = tl.engaged, tl.engagement_end
        count = rng.randint(3, 8) if outcome is Outcome.ENGAGED else rng.randint(6, 16)
    share = HIGH_VALUE_SHARE.get(outcome, 0.3)
    for _ in range(count):
        at = between(rng, low, high)
        visit(log, plan, rng.choice(plan.visitors), at, pick_page(rng, share), pick_referrer(rng))
    if tl.active_until is not None:  # the latest touch, so engagement is recent for sure
        visitor = rng.choice(plan.resolved_visitors())
        visit(log, plan, visitor, tl.active_until, pick_page(rng, share), pick_referrer(rng))
    _anonymous_history(log, plan, rng)


def _anonymous_history(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """The anonymous champion browses a few times before a form fill identifies them."""
    champion = plan.visitors[0] if plan.visitors else None
    engaged = plan.timeline.engaged
    if champion is None or champion.resolved or champion.contact is None or engaged is None:
        return
    until = champion.contact.identified_at - timedelta(hours=1)
    for _ in range(rng.randint(2, 5)):
        at = between(rng, engaged, until)
        visit(log, plan, champion, at, pick_page(rng, 0.2), pick_referrer(rng))


def _research_spike(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """Weeks of about one page view a day, then 20-40 views within an hour."""
    if plan.spike_at is None:
        return
    browsers = plan.resolved_visitors()
    quiet = max(plan.timeline.known, plan.spike_at - timedelta(days=rng.uniform(21, 35)))
    day = quiet + timedelta(days=1)
    while day < plan.spike_at - timedelta(days=1):
        at = day + timedelta(hours=rng.uniform(0, 20))
        visit(log, plan, rng.choice(browsers), at, pick_page(rng, 0.0), pick_referrer(rng))
        day += timedelta(days=1)
    team = rng.sample(browsers, min(len(browsers), rng.randint(2, 4)))
    for _ in range(rng.randint(20, 40)):
        at = plan.spike_at + timedelta(minutes=rng.uniform(0, 55))
        visit(log, plan, rng.choice(team), at, pick_page(rng, 0.25))


def _ads(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """Weekly account-based impressions (reach); engaged accounts also click."""
    tl = plan.timeline
    viewers = plan.resolved_visitors()
    until = tl.closed if plan.outcome in CUSTOMER_OUTCOMES and tl.closed else tl.start
    week = tl.known + timedelta(hours=1)
    while week < until:
        for _ in range(rng.randint(0, 2)):
            at = min(week + timedelta(days=rng.uniform(0, 7)), until)
            _impression(log, plan, rng.choice(viewers), at, rng)
        week += timedelta(days=7)
    if plan.outcome in ENGAGED_OUTCOMES and tl.engaged is not None:
        for _ in range(rng.randint(1, 3)):
            _click(log, plan, rng.choice(viewers), between(rng, tl.engaged, tl.presale_end), rng)


def _impression(
    log: DraftLog, plan: Plan, viewer: Visitor, at: datetime, rng: random.Random
) -> Campaign:
    campaign = pick_campaign(rng)
    properties = {"campaign_id": campaign.campaign_id, "channel": campaign.channel}
    log.add(track_call(at, viewer.who(at, plan.domain), "Ad Impression", properties))
    return campaign


def _click(log: DraftLog, plan: Plan, viewer: Visitor, at: datetime, rng: random.Random) -> None:
    """Impression, click, then the landing page: the same browser, minutes apart."""
    shown = at - timedelta(minutes=rng.uniform(2, 40))
    campaign = _impression(log, plan, viewer, shown, rng)
    properties = {"campaign_id": campaign.campaign_id, "channel": campaign.channel}
    log.add(track_call(at, viewer.who(at, plan.domain), "Ad Clicked", properties))
    query = f"utm_source={campaign.channel}&utm_campaign={campaign.campaign_id}"
    visit(log, plan, viewer, at + timedelta(seconds=20), LANDING, "https://ads.example/", query)


def _intent(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """Third-party research: a quiet baseline, maybe a recent surge, competitor research."""
    tl = plan.timeline
    topics = rng.sample(OUR_TOPICS, 2)
    if rng.random() < 0.6:
        moment = tl.known + timedelta(days=rng.uniform(1, 10))
        while moment < tl.start:
            _signal(log, plan, moment, rng.choice(topics), rng.randint(10, 45), rng)
            moment += timedelta(days=rng.uniform(7, 16))
    if plan.outcome is not Outcome.CHURNED and rng.random() < 0.35:
        for _ in range(rng.randint(3, 6)):
            at = tl.start - timedelta(days=rng.uniform(0.1, 10))
            _signal(log, plan, at, topics[0], rng.randint(65, 98), rng)
    researching_rivals = plan.outcome is Outcome.RETENTION and rng.random() < 0.25
    until = tl.churned or (tl.start if researching_rivals else None)
    if until is not None:
        for _ in range(rng.randint(3, 5)):
            at = until - timedelta(days=rng.uniform(0.5, 30))
            _signal(log, plan, at, rng.choice(COMPETITOR_TOPICS), rng.randint(60, 95), rng)


def _signal(
    log: DraftLog, plan: Plan, at: datetime, topic: str, score: int, rng: random.Random
) -> None:
    source = rng.choice(INTENT_SOURCES)
    properties: dict[str, object] = {"topic": topic, "source": source}
    if source == "g2":
        properties["count"] = max(1, score // 8)
    else:
        properties["score"] = score
    who = Who(user_id=f"intent:{plan.domain}", group_id=plan.domain)
    log.add(track_call(at, who, "Intent Signal", properties))
