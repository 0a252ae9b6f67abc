"""``/v1/kpis`` and ``/v1/funnel/cohorts`` over real HTTP on PostgreSQL, after the funnel's
own handler applied a small scenario; every expected number is computed by hand below."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from schemas import topics
from schemas.events import (
    AccountUpserted,
    AdInteracted,
    CampaignSpent,
    ChatOccurred,
    Event,
    MeetingHeld,
    NpsSubmitted,
    OpportunityChanged,
    PageViewed,
    SubscriptionChanged,
    SurgeStarted,
)
from services.api.kpi_models import FIGURE_DECIMALS
from services.funnel.config import FunnelConfig
from services.funnel.service import FunnelHandler
from services.kit import db
from services.kit.credentials import store_api_token
from services.kit.inbound import InboundRecord
from services.kit.tables import visitors
from tests.api_server import READ, serving

pytestmark = pytest.mark.integration

FEBRUARY = {"from": "2026-02-01", "to": "2026-02-28"}


def day(month: int, dom: int, hours: float = 0) -> datetime:
    return datetime(2026, month, dom, tzinfo=UTC) + timedelta(hours=hours)


class Scenario:
    def __init__(self, name: str) -> None:
        self.name = name
        self.events: list[Event] = []

    def add(self, kind: type[Any], account: str | None, when: datetime, **kw: Any) -> None:
        self.events.append(
            kind(
                event_id=f"{self.name}{len(self.events)}",
                occurred_at=when,
                received_at=when,
                account=account,
                source="test",
                **kw,
            )
        )


def scenario() -> tuple[list[Event], list[Event]]:
    """January, then February (two batches). Six targets a, b, c, d, f, g (explicitly
    targeted without firmographics: tier 3 by ``tier3_below_fit``); e is no target."""
    jan, feb = Scenario("jan"), Scenario("feb")
    for name in ("f", "g"):
        jan.add(AccountUpserted, f"{name}.com", day(1, 1), target=True)
    for name in ("a", "b", "c", "d"):
        jan.add(AccountUpserted, f"{name}.com", day(1, 20), target=True)
    jan.add(
        OpportunityChanged,
        "f.com",
        day(1, 5),
        type="opportunity_won",
        opportunity_id="F",
        amount=20_000,
    )
    jan.add(
        OpportunityChanged,
        "g.com",
        day(1, 6),
        type="opportunity_won",
        opportunity_id="G",
        amount=8_000,
    )
    jan.add(PageViewed, "c.com", day(1, 25), url="https://v.io/blog")  # c engaged in January
    jan.add(CampaignSpent, None, day(1, 15), channel="events", amount=1_000.0)  # January only
    # a: impression, a view-through visit, a pricing visit, an opportunity, won on Feb 14.
    feb.add(AdInteracted, "a.com", day(2, 1, 12), type="ad_impressed", campaign_id="c1")
    feb.add(PageViewed, "a.com", day(2, 2), url="https://v.io/blog")
    feb.add(PageViewed, "a.com", day(2, 3), url="https://v.io/pricing")
    feb.add(
        OpportunityChanged,
        "a.com",
        day(2, 4),
        type="opportunity_created",
        opportunity_id="A",
        amount=10_000,
    )
    feb.add(
        OpportunityChanged,
        "a.com",
        day(2, 14),
        type="opportunity_won",
        opportunity_id="A",
        amount=12_000,
    )
    # b: a chat, a meeting with two of its people, an opportunity still open.
    feb.add(ChatOccurred, "b.com", day(2, 5), type="chat_started", contact_email="bob@b.com")
    feb.add(MeetingHeld, "b.com", day(2, 6), attendees=["bob@b.com", "ann@b.com", "me@v.io"])
    feb.add(
        OpportunityChanged,
        "b.com",
        day(2, 10),
        type="opportunity_created",
        opportunity_id="B",
        amount=5_000,
    )
    # c: an impression and a web research spike; e (no target) visits.
    feb.add(AdInteracted, "c.com", day(2, 8), type="ad_impressed", campaign_id="c1")
    feb.add(
        SurgeStarted,
        "c.com",
        day(2, 9),
        topic="web",
        score=80,
        baseline=1,
        observed=9,
        detector_version="t",
    )
    feb.add(PageViewed, "e.com", day(2, 3), url="https://v.io/")
    # f renews and expands; g churns.
    feb.add(
        SubscriptionChanged,
        "f.com",
        day(2, 15),
        type="subscription_renewed",
        amount=22_000,
        term_end=date(2027, 2, 15),
    )
    feb.add(SubscriptionChanged, "f.com", day(2, 16), type="subscription_expanded", amount=3_000)
    feb.add(SubscriptionChanged, "g.com", day(2, 20), type="subscription_churned")
    # NPS: a 10 (promoter), b 6 (detractor), f 9 (promoter)
    for name, score, dom in (("a", 10, 20), ("b", 6, 21), ("f", 9, 22)):
        feb.add(NpsSubmitted, f"{name}.com", day(2, dom), score=score)
    # 2,800 over February (100 a day) on no account in particular
    feb.add(
        CampaignSpent,
        None,
        day(2, 1),
        channel="display",
        amount=2_800.0,
        period_start=date(2026, 2, 1),
        period_end=date(2026, 2, 28),
    )
    return jan.events, feb.events


def visitor(name: str, account: str, seen: datetime, identified: datetime | None) -> Any:
    return {"anonymous_id": name, "account": account, "first_seen_at": seen,
            "last_seen_at": seen, "identified_at": identified}  # fmt: skip


# Anonymous in February and of a target: v1 (identified in February), v2, v6 (identified
# in March): de-anonymisation rate 1 / 3. v3 was known before, v4 is no target's, v5 came
# after.
VISITORS = [
    visitor("v1", "a.com", day(1, 28), day(2, 3)),
    visitor("v2", "a.com", day(2, 5), None),
    visitor("v3", "b.com", day(1, 10), day(1, 12)),
    visitor("v4", "e.com", day(2, 2), day(2, 4)),
    visitor("v5", "c.com", day(3, 2), None),
    visitor("v6", "c.com", day(2, 10), day(3, 5)),
]


@pytest.fixture
async def api(pg_url: str) -> AsyncIterator[httpx.AsyncClient]:
    handler = FunnelHandler(FunnelConfig())
    engine = db.create_engine(url=pg_url)
    offset = 0
    for batch in scenario():
        records = []
        for event in batch:
            records.append(InboundRecord(topics.EVENTS.name, 0, offset, event))
            offset += 1
        async with db.create_sessionmaker(engine)() as session, session.begin():
            await handler.apply(session, records)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await store_api_token(session, "reader", "kpi-test", frozenset({"read"}))
        await session.execute(insert(visitors), VISITORS)
    await engine.dispose()
    async with serving(pg_url, api_rate_limit_burst=1000) as client:
        yield client


def as_sent(value: float) -> float:
    """A hand-computed figure as the API sends it (``FIGURE_DECIMALS`` decimals)."""
    return round(value, FIGURE_DECIMALS)


def by_name(body: dict[str, Any]) -> dict[str, Any]:
    return {kpi["name"]: kpi["value"] for stage in body["stages"] for kpi in stage["kpis"]}


async def test_february_kpis_by_hand(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/kpis", params=FEBRUARY, headers=READ)
    assert response.status_code == 200, response.text
    body = response.json()
    kpis = by_name(body)
    assert kpis["target_accounts"] == 6  # a, b, c, d, f, g
    assert kpis["surges"] == 1
    # targets' February activity: impressions a, c; a's two visits, both within 7 days of
    # its impression without a click (view-through), one of pricing; b's chat (e's visit is
    # no target's)
    assert (kpis["ad_impressions"], kpis["visits"], kpis["view_through_visits"]) == (2, 2, 2)
    assert (kpis["high_value_visits"], kpis["chats"], kpis["ad_clicks"]) == (1, 1, 0)
    # engaged in February: a, b (c engaged in January) -> 2 of 6
    assert kpis["engaged_accounts"] == 2
    assert kpis["engaged_share"] == as_sent(1 / 3)
    assert kpis["not_engaged_share"] == as_sent(2 / 3)
    assert kpis["spend"] == pytest.approx(2_800.0)  # January's 1,000 is not February's
    assert kpis["cost_per_engaged_account"] == pytest.approx(1_400.0)
    assert kpis["web_research_spikes"] == 1
    assert kpis["web_research_spikes_per_account"] == as_sent(1 / 6)
    # opportunities opened in February: a (2 days after its first visit), b (5 days after
    # its chat); b is the one still open: 5,000 pipeline, 2 people of b.com known.
    assert kpis["opportunity_accounts"] == 2
    assert kpis["opportunity_rate"] == as_sent(2 / 6)
    assert kpis["pipeline"] == pytest.approx(5_000.0)
    assert kpis["stakeholders"] == 2
    assert kpis["days_first_engagement_to_opportunity"] == pytest.approx(3.5)
    assert kpis["cost_per_opportunity"] == pytest.approx(1_400.0)
    # won in February: a, 12 days after its first visit, after 3 touches
    assert kpis["won_accounts"] == 1
    assert kpis["win_rate"] == as_sent(1 / 6)
    assert kpis["new_revenue"] == pytest.approx(12_000.0)
    assert kpis["deal_cycle_days"] == pytest.approx(12.0)
    assert kpis["touches_per_won_account"] == pytest.approx(3.0)
    assert kpis["cost_per_won_account"] == pytest.approx(2_800.0)
    # f renewed, g churned: 1 of 2
    assert kpis["renewed_customers"] == 1
    assert kpis["renewal_rate"] == pytest.approx(0.5)
    # contracts signed: a's 12,000 and f's renewal 22,000; plus f's 3,000 expansion
    assert kpis["average_contract_value"] == pytest.approx(17_000.0)
    assert kpis["expansion_revenue"] == pytest.approx(3_000.0)
    assert kpis["total_revenue"] == pytest.approx(37_000.0)
    assert kpis["nps"] == as_sent(100 / 3)  # (2 promoters - 1 detractor) / 3
    assert kpis["deanonymisation_rate"] == as_sent(1 / 3)
    figures = [v for v in kpis.values() if v is not None]
    assert all(round(v, FIGURE_DECIMALS) == v for v in figures)  # none like 0.33333333333


async def test_stage_figures_conversions_and_definitions(api: httpx.AsyncClient) -> None:
    body = (await api.get("/v1/kpis", params=FEBRUARY, headers=READ)).json()
    stages = {s["stage"]: s for s in body["stages"]}
    # now: d, g target; c engaged; b opportunity; a won; f expansion
    assert [stages[s]["accounts"] for s in stages] == [2, 1, 1, 1, 0, 1]
    # entered in February: g target (churned), a, b engaged and opportunity, a won,
    # f retention and expansion; one regression: g from won back to target
    assert [stages[s]["entered"] for s in stages] == [1, 2, 2, 1, 1, 1]
    assert stages["won"]["regressions"] == 1
    assert sum(s["regressions"] for s in stages.values()) == 1
    # reached: all 6 target; engaged or further: a, b, c, f, g (f and g skipped it) = 5;
    # opportunity or further 4 (a, b, f, g); won or further 3; retention+ 1 (f); expansion 1
    assert [(c["reached_from"], c["reached_to"]) for c in body["conversions"]] == [
        (6, 5),
        (5, 4),
        (4, 3),
        (3, 1),
        (1, 1),
    ]
    nps = next(k for k in stages["expansion"]["kpis"] if k["name"] == "nps")
    assert nps["unit"] == "score" and "promoters" in nps["definition"]


async def test_tiers_filter_facts_by_the_tier_they_had(api: httpx.AsyncClient) -> None:
    tier3 = by_name(
        (await api.get("/v1/kpis", params={**FEBRUARY, "tier": 3}, headers=READ)).json()
    )
    assert (tier3["target_accounts"], tier3["visits"], tier3["engaged_accounts"]) == (6, 2, 2)
    assert tier3["spend"] == 0.0  # February's spend named no account: no tier's
    assert tier3["cost_per_engaged_account"] == 0.0
    tier1 = by_name(
        (await api.get("/v1/kpis", params={**FEBRUARY, "tier": 1}, headers=READ)).json()
    )
    assert (tier1["target_accounts"], tier1["visits"], tier1["engaged_share"]) == (0, 0, None)


async def test_bad_periods_are_problems(api: httpx.AsyncClient) -> None:
    reversed_period = await api.get(
        "/v1/kpis", params={"from": "2026-03-01", "to": "2026-02-01"}, headers=READ
    )
    assert reversed_period.status_code == 400
    assert reversed_period.headers["content-type"] == "application/problem+json"
    assert reversed_period.json()["field"] == "from"
    garbage = await api.get("/v1/kpis", params={"from": "february"}, headers=READ)
    assert garbage.status_code == 422
    assert (await api.get("/v1/kpis", params={"tier": 4}, headers=READ)).status_code == 422
    assert (await api.get("/v1/kpis")).status_code == 401


async def test_cohorts_by_entry_month(api: httpx.AsyncClient) -> None:
    response = await api.get("/v1/funnel/cohorts", headers=READ)
    assert response.status_code == 200, response.text
    [january] = response.json()["cohorts"]
    assert (january["month"], january["size"]) == ("2026-01", 6)
    stages = {s["stage"]: s for s in january["stages"]}
    # engaged: c 5 days after entering (Jan 20 -> 25), a 13, b 16 -> median 13
    assert (stages["engaged"]["reached"], stages["engaged"]["median_days"]) == (3, 13.0)
    # opportunity: a 15 days, b 21 -> 18; won: f 4 (Jan 1 -> 5), g 5, a 25 -> 5
    assert (stages["opportunity"]["reached"], stages["opportunity"]["median_days"]) == (2, 18.0)
    assert (stages["won"]["reached"], stages["won"]["median_days"]) == (3, 5.0)
    assert stages["won"]["share"] == pytest.approx(0.5)
    assert (stages["retention"]["reached"], stages["retention"]["median_days"]) == (1, 45.0)
    assert (stages["expansion"]["reached"], stages["expansion"]["median_days"]) == (1, 46.0)
    later = await api.get("/v1/funnel/cohorts", params={"from": "2026-02-01"}, headers=READ)
    assert later.json()["cohorts"] == []


async def test_without_a_period_everything_counts(api: httpx.AsyncClient) -> None:
    kpis = by_name((await api.get("/v1/kpis", headers=READ)).json())
    assert kpis["spend"] == pytest.approx(3_800.0)  # January's 1,000 too
    assert kpis["won_accounts"] == 3  # f, g in January, a in February
    assert kpis["new_revenue"] == pytest.approx(40_000.0)  # 20,000 + 8,000 + 12,000
    assert kpis["engaged_accounts"] == 3  # c's January visit counts now
    # visitors of targets: v1, v2, v3, v5, v6; identified: v1, v3, v6
    assert kpis["deanonymisation_rate"] == pytest.approx(0.6)
    assert kpis["renewal_rate"] == pytest.approx(0.5)


async def test_the_widest_period_is_all_time(api: httpx.AsyncClient) -> None:
    widest = {"from": "0001-01-01", "to": "9999-12-31"}
    response = await api.get("/v1/kpis", params=widest, headers=READ)
    assert response.status_code == 200, response.text
    assert by_name(response.json())["won_accounts"] == 3
    cohorts = await api.get("/v1/funnel/cohorts", params=widest, headers=READ)
    assert [c["month"] for c in cohorts.json()["cohorts"]] == ["2026-01"]


async def test_the_funnel_report_carries_each_stage_s_kpis(api: httpx.AsyncClient) -> None:
    kpis = (await api.get("/v1/kpis", params=FEBRUARY, headers=READ)).json()
    period = {"from": f"{FEBRUARY['from']}T00:00:00Z", "to": f"{FEBRUARY['to']}T23:59:59Z"}
    funnel = await api.get("/v1/funnel", params=period, headers=READ)
    assert funnel.status_code == 200, funnel.text
    assert by_name(funnel.json()) == by_name(kpis)
    stages = {s["stage"]: [k["name"] for k in s["kpis"]] for s in funnel.json()["stages"]}
    assert "nps" in stages["expansion"] and "win_rate" in stages["won"]


async def test_the_funnel_counts_moves_and_kpis_over_the_same_day(api: httpx.AsyncClient) -> None:
    """[14 Feb 00:00Z, 15 Feb 00:00Z) is 14 February for the moves and the KPIs alike: a
    wins (a move into won and a KPI); f's renewal at 15 Feb 00:00Z is in neither."""
    one_day = {"from": "2026-02-14T00:00:00Z", "to": "2026-02-15T00:00:00Z"}
    response = await api.get("/v1/funnel", params=one_day, headers=READ)
    assert response.status_code == 200, response.text
    body = response.json()
    entered = {s["stage"]: s["entered"] for s in body["stages"]}
    assert entered == {
        "target": 0,
        "engaged": 0,
        "opportunity": 0,
        "won": 1,  # a, at 14 Feb 00:00Z
        "retention": 0,  # f renewed at 15 Feb 00:00Z: the window's end, outside it
        "expansion": 0,
    }
    kpis = by_name(body)
    assert (kpis["won_accounts"], kpis["new_revenue"]) == (1, pytest.approx(12_000.0))
    assert (kpis["renewed_customers"], kpis["total_revenue"]) == (0, pytest.approx(12_000.0))
    assert kpis["spend"] == pytest.approx(100.0)  # one day of February's 2,800
    # The same instants written at -05:00 are the same UTC day, not 13-14 February.
    local = {"from": "2026-02-13T19:00:00-05:00", "to": "2026-02-14T19:00:00-05:00"}
    same = (await api.get("/v1/funnel", params=local, headers=READ)).json()
    assert same["stages"] == body["stages"]


async def test_the_funnel_s_target_accounts_and_engaged_share_are_the_kpis(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    """h.com wins without ever being a target: a customer, but no target, so neither in
    the funnel's stages nor a target account nor an engaged one."""
    engine = db.create_engine(url=pg_url)
    won = Scenario("h")
    won.add(OpportunityChanged, "h.com", day(2, 10), type="opportunity_won", opportunity_id="H")
    records = [InboundRecord(topics.EVENTS.name, 0, 1_000, won.events[0])]
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await FunnelHandler(FunnelConfig()).apply(session, records)
    await engine.dispose()
    february = {"from": "2026-02-01T00:00:00Z", "to": "2026-03-01T00:00:00Z"}
    body = (await api.get("/v1/funnel", params=february, headers=READ)).json()
    # The funnel is of target accounts, as /v1/kpis: h, won but never a target, is not in it.
    assert sum(s["accounts"] for s in body["stages"]) == 6
    kpis = by_name(body)
    # targets a, b, c, d, f, g; engaged in February: a and b
    assert (body["target_accounts"], kpis["target_accounts"]) == (6, 6)
    assert body["engaged_share"] == kpis["engaged_share"] == as_sent(2 / 6)
    # /v1/kpis counts target accounts only: h is in no stage, nor reached any.
    report = (await api.get("/v1/kpis", params=FEBRUARY, headers=READ)).json()
    assert [s["accounts"] for s in report["stages"]] == [2, 1, 1, 1, 0, 1]
    assert report["conversions"][2]["reached_to"] == 3  # won or beyond: a, f, g
