"""``abm simulate``: the pure scenario (journeys, firmographics, stages, timing)."""

from __future__ import annotations

import json
import random
import re
from collections import Counter, defaultdict
from datetime import date, timedelta

import pytest

from schemas.events import STAGE_ORDER
from services.funnel.config import FunnelConfig
from services.simulate.scenario import Scenario
from services.simulate.segment import Message, timestamp_of
from services.simulate.timeline import Outcome, allocate_outcomes
from tests.unit.simulation_world import START, scenario

TRACK_EVENTS = {
    "Ad Impression", "Ad Clicked", "Chat Started", "Email Sent", "Email Opened",
    "Email Clicked", "Email Replied", "Meeting Held", "Form Submitted", "Intent Signal",
    "Opportunity Created", "Opportunity Updated", "Opportunity Won", "Opportunity Lost",
    "Subscription Renewed", "Subscription Expanded", "Subscription Churned",
    "NPS Submitted", "Campaign Spend",
}  # fmt: skip
ISO_WITH_ZONE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?([+-]\d\d:\d\d|Z)$")


@pytest.fixture(scope="module")
def default() -> Scenario:
    return scenario()


# --- the scenario -------------------------------------------------------------------------


def test_a_seed_always_gives_the_same_messages() -> None:
    assert scenario(seed=7).messages() == scenario(seed=7).messages()
    assert scenario(seed=7).messages() != scenario(seed=8).messages()


def test_a_later_run_gets_new_message_ids_for_the_same_world() -> None:
    first, later = scenario(start=START), scenario(start=START + timedelta(hours=1))
    assert [j.account for j in first.journeys] == [j.account for j in later.journeys]
    first_ids = {m["messageId"] for m in first.messages()}
    assert first_ids.isdisjoint(m["messageId"] for m in later.messages())


def test_every_message_is_a_valid_segment_message(default: Scenario) -> None:
    messages = default.messages()
    for message in messages:
        _assert_valid(message)
        assert timestamp_of(message) <= START
    ids = [m["messageId"] for m in messages]
    assert len(set(ids)) == len(ids)


def test_each_journey_starts_with_its_group_call_and_runs_forward(default: Scenario) -> None:
    for journey in default.journeys:
        first = journey.messages[0]
        assert (first["type"], first["groupId"]) == ("group", journey.account.domain)
        moments = [timestamp_of(m) for m in journey.messages]
        assert moments == sorted(moments)
        assert moments[0] >= START - timedelta(days=121)


def test_history_spans_months_and_ends_near_the_start(default: Scenario) -> None:
    moments = [timestamp_of(m) for m in default.messages()]
    assert min(moments) < START - timedelta(days=100)
    assert max(moments) > START - timedelta(hours=12)


def test_interleaved_traffic_keeps_each_accounts_order(default: Scenario) -> None:
    owner = {m["messageId"]: j.account.index for j in default.journeys for m in j.messages}
    per_account: dict[int, list[str]] = defaultdict(list)
    traffic = default.messages()
    for message in traffic:
        if message["messageId"] in owner:
            per_account[owner[message["messageId"]]].append(message["messageId"])
    for journey in default.journeys:
        assert per_account[journey.account.index] == [m["messageId"] for m in journey.messages]
    moments = [timestamp_of(m) for m in traffic]
    assert moments == sorted(moments)


def test_fifty_accounts_cover_all_six_stages(default: Scenario) -> None:
    stages = Counter(journey.outcome.final_stage for journey in default.journeys)
    for stage in STAGE_ORDER:
        assert stages[stage] >= 2, stage
    outcomes = default.outcomes()
    assert outcomes[Outcome.LOST] >= 1
    assert outcomes[Outcome.CHURNED] >= 1


@pytest.mark.parametrize("targets", [1, 5, 6, 23, 24, 37, 200])
def test_outcomes_add_up_and_reach_every_stage_when_there_are_enough(targets: int) -> None:
    outcomes = Counter(allocate_outcomes(targets, random.Random(1)))
    assert sum(outcomes.values()) == targets
    if targets >= 12:
        stages = {o.final_stage for o in outcomes}
        assert set(STAGE_ORDER) <= stages


def test_most_accounts_fit_the_icp_and_only_a_few_are_marked(default: Scenario) -> None:
    accounts = [journey.account for journey in default.journeys]
    assert sum(a.fits_icp for a in accounts) == 35
    marked = [a for a in accounts if "target" in a.traits()]
    assert 1 <= len(marked) <= 5
    assert all(a.traits()["target"] is True for a in marked)
    assert len({a.domain for a in accounts}) == len(accounts)
    not_targets = [j for j in default.journeys if j.outcome is Outcome.NOT_TARGET]
    assert all(not j.account.is_target for j in not_targets)


def test_journeys_reach_the_milestones_of_their_outcome(default: Scenario) -> None:
    expected = {
        Outcome.TARGET: set(),
        Outcome.OPPORTUNITY: {"Opportunity Created"},
        Outcome.LOST: {"Opportunity Created", "Opportunity Lost"},
        Outcome.WON: {"Opportunity Won"},
        Outcome.RETENTION: {"Opportunity Won", "Subscription Renewed"},
        Outcome.EXPANSION: {"Opportunity Won", "Subscription Renewed", "Subscription Expanded"},
        Outcome.CHURNED: {"Opportunity Won", "Subscription Churned"},
    }
    for journey in default.journeys:
        events = {m.get("event") for m in journey.messages}
        assert expected.get(journey.outcome, set()) <= events
        if journey.outcome in (Outcome.TARGET, Outcome.ENGAGED, Outcome.NOT_TARGET):
            assert "Opportunity Created" not in events


def test_quiet_targets_have_no_engagement_within_the_funnels_window(default: Scenario) -> None:
    recent = START - timedelta(days=FunnelConfig().engagement_window_days)
    for journey in default.journeys:
        if journey.outcome is Outcome.TARGET:
            kinds = {
                m.get("event", m["type"]) for m in journey.messages if timestamp_of(m) > recent
            }
            assert kinds <= {"Ad Impression", "Intent Signal"}


def test_engaged_journeys_end_with_a_recent_visit(default: Scenario) -> None:
    for journey in default.journeys:
        if journey.outcome in (Outcome.ENGAGED, Outcome.OPPORTUNITY, Outcome.LOST):
            last = max(timestamp_of(m) for m in journey.messages if m["type"] == "page")
            assert last > START - timedelta(days=7)


def test_icp_fit_follows_the_firmographics(default: Scenario) -> None:
    icp = {"salesforce", "hubspot", "marketo", "netsuite"}
    for account in (journey.account for journey in default.journeys):
        criteria = [
            account.industry in {"software", "saas", "fintech"},
            account.country in {"US", "GB", "DE", "CA"},
            50 <= account.employees <= 5000 and account.annual_revenue >= 5_000_000,
            bool(icp & set(account.technologies)),
            account.funding != "bootstrapped",
        ]
        assert all(criteria) if account.fits_icp else sum(criteria) <= 2


def test_anonymous_visitors_are_identified_later_by_email(default: Scenario) -> None:
    identified = 0
    for journey in default.journeys:
        by_visitor: dict[str, list[Message]] = defaultdict(list)
        for message in journey.messages:
            if "anonymousId" in message:
                by_visitor[message["anonymousId"]].append(message)
        for visits in by_visitor.values():
            first, kinds = visits[0], [m["type"] for m in visits]
            if "groupId" in first["context"] or "identify" not in kinds:
                continue
            before = visits[: kinds.index("identify")]
            assert before and all("groupId" not in m["context"] for m in before)
            email = visits[kinds.index("identify")]["traits"]["email"]
            assert email.endswith("@" + journey.account.domain)
            identified += 1
    assert identified >= 3


def test_some_accounts_show_a_web_research_spike(default: Scenario) -> None:
    spiking = [j for j in default.journeys if _has_spike(j.messages)]
    assert len(spiking) >= 2


def test_campaign_spend_is_reported_per_week_and_channel(default: Scenario) -> None:
    spend = [m for m in default.messages() if m.get("event") == "Campaign Spend"]
    assert {m["properties"]["channel"] for m in spend} == {"display", "email_signature"}
    for message in spend:
        period = message["properties"]
        start, end = (
            date.fromisoformat(period["period_start"]),
            date.fromisoformat(period["period_end"]),
        )
        assert (end - start).days == 6
        assert end < timestamp_of(message).date()


def _has_spike(messages: tuple[Message, ...]) -> bool:
    """20+ page views within an hour, after at least two weeks of quieter days."""
    views = sorted(timestamp_of(m) for m in messages if m["type"] == "page")
    for index, moment in enumerate(views):
        burst = [v for v in views[index:] if v < moment + timedelta(hours=1)]
        quiet_days = {v.date() for v in views if moment - timedelta(days=21) <= v < moment}
        if len(burst) >= 20 and len(quiet_days) >= 14:
            return True
    return False


def _assert_valid(message: Message) -> None:
    assert message["type"] in {"identify", "group", "track", "page"}
    assert re.fullmatch(r"[0-9a-f]{32}", message["messageId"])
    assert ISO_WITH_ZONE.match(message["timestamp"]), message["timestamp"]
    assert message.get("anonymousId") or message.get("userId")
    assert isinstance(message["context"], dict)
    json.dumps(message, allow_nan=False)
    check = {"group": _check_group, "identify": _check_identify, "page": _check_page}
    check.get(message["type"], _check_track)(message)


def _check_group(message: Message) -> None:
    traits = message["traits"]
    assert re.fullmatch(r"[a-z0-9]+\.[a-z.]+", message["groupId"])
    assert {"name", "industry", "country", "employees", "annual_revenue"} <= traits.keys()
    assert {"technologies", "funding", "customer_count"} <= traits.keys()
    assert isinstance(traits["technologies"], list)


def _check_identify(message: Message) -> None:
    assert "userId" in message
    assert re.fullmatch(r"[a-z0-9.]+@[a-z0-9.]+", message["traits"]["email"])


def _check_page(message: Message) -> None:
    properties = message["properties"]
    assert properties["url"].startswith("https://") and properties["path"].startswith("/")
    assert {"referrer", "title"} <= properties.keys()
    assert message["name"]


def _check_track(message: Message) -> None:
    event, properties = message["event"], message["properties"]
    assert event in TRACK_EVENTS
    if event != "Campaign Spend":
        assert message["context"].get("groupId") or "anonymousId" in message
    if event.startswith("Opportunity"):
        assert {"opportunity_id", "amount", "stage"} <= properties.keys()
    if event.startswith("Subscription"):
        assert properties["amount"] >= 0
        date.fromisoformat(properties["term_end"])
    if event == "NPS Submitted":
        assert 0 <= properties["score"] <= 10
    if event == "Intent Signal":
        assert properties["topic"] and properties["source"]
        assert 0 <= properties.get("score", 0) <= 100
    if event.startswith("Ad "):
        assert properties["channel"] in {"display", "email_signature"}
    if event.startswith("Email "):
        assert properties["direction"] in {"inbound", "outbound"} and properties["email"]
    if event == "Meeting Held":
        assert properties["attendees"]
