"""The API over real HTTP on PostgreSQL, with state written by the funnel's own code."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from typing import Any

import httpx
import pytest

from schemas.events import (
    AccountUpserted,
    OpportunityChanged,
    PageViewed,
    SurgeEnded,
    SurgeStarted,
)
from services.funnel import repository as funnel_repository
from services.funnel.cache import StateCache
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.intent import repository as intent_repository
from services.kit import db
from tests.api_server import READ, T0, seed, serving

pytestmark = pytest.mark.integration


async def test_authentication_and_scopes(api: httpx.AsyncClient) -> None:
    assert (await api.get("/v1/funnel")).status_code == 401
    unknown = await api.get("/v1/funnel", headers={"Authorization": "Bearer nope"})
    assert unknown.status_code == 401 and unknown.headers["www-authenticate"] == "Bearer"
    assert unknown.headers["content-type"] == "application/problem+json"
    forbidden = await api.get("/v1/funnel", headers={"Authorization": "Bearer writer"})
    assert forbidden.status_code == 403 and "read" in forbidden.json()["detail"]


async def test_moves_of_one_moment_are_listed_in_the_order_they_were_made(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    """Visited, then targeted: the upsert makes two moves at one moment, none -> target ->
    engaged. The id of the second sorts first (cause "targeted-4"): the history still
    lists them in the order they were made."""
    visit = PageViewed(event_id="early-visit", occurred_at=T0, received_at=T0,
                       account="late.com", source="web", url="https://v.io/")  # fmt: skip
    targeted = AccountUpserted(event_id="targeted-4", occurred_at=T0 + timedelta(hours=1),
                               received_at=T0, account="late.com", source="crm",
                               target=True)  # fmt: skip
    states, changes = apply_events({}, [visit, targeted], FunnelConfig())
    assert (
        sorted(c.event_id for c in changes if c.type == "stage_changed")
        == [c.event_id for c in changes if c.type == "stage_changed"][::-1]
    ), "the ids no longer sort the moves backwards: pick another cause id"
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await funnel_repository.save_accounts(session, states.values(), StateCache(10))
        await funnel_repository.record_transitions(session, changes)
    await engine.dispose()
    body = (await api.get("/v1/accounts/late.com", headers=READ)).json()
    history = [(t["from_stage"], t["to_stage"]) for t in body["stage_history"]]
    assert history == [(None, "target"), ("target", "engaged")]
    assert len({t["at"] for t in body["stage_history"]}) == 1


async def test_account_detail_explains_itself_and_revalidates_with_etag(
    api: httpx.AsyncClient,
) -> None:
    response = await api.get("/v1/accounts/WWW.ACCT03.COM", headers=READ)
    assert response.status_code == 200
    body = response.json()
    assert body["stage"] == "engaged" and body["surging"] is True
    assert [s["topic"] for s in body["surges"]] == ["pricing"]
    assert [t["to_stage"] for t in body["stage_history"]] == ["target", "engaged"]
    # The current stage with since-when and why: its rule and its evidence event ids.
    last_move = body["stage_history"][-1]
    assert (body["stage_since"], body["stage_rule"]) == (last_move["at"], last_move["rule"])
    assert body["stage_cause_event_ids"] == last_move["cause_event_ids"] == ["p3"]
    assert body["tier_history"] and all(  # the configuration that decided each move
        t["config_version"] == FunnelConfig().version
        for t in body["stage_history"] + body["tier_history"]
    )
    assert {c["criterion"] for c in body["fit"]["contributions"]} >= {"industry", "employees"}
    etag = response.headers["etag"]
    again = await api.get("/v1/accounts/acct03.com", headers={**READ, "If-None-Match": etag})
    assert again.status_code == 304 and again.content == b"" and again.headers["etag"] == etag
    other = await api.get("/v1/accounts/acct04.com", headers={**READ, "If-None-Match": etag})
    assert other.status_code == 200


async def test_without_the_detail_cache_the_route_revalidates_its_own_etag(pg_url: str) -> None:
    """The route reads a detail with its version in one statement when the client sent no
    ``If-None-Match``, and the version alone first when it did: both give one ETag."""
    await seed(pg_url)
    async with serving(pg_url, api_detail_cache_mb=0) as client:
        for account in ("acct03.com", "acct07.com"):  # with a surge, and without
            full = await client.get(f"/v1/accounts/{account}", headers=READ)
            etag = full.headers["etag"]
            again = await client.get(
                f"/v1/accounts/{account}", headers={**READ, "If-None-Match": etag}
            )
            assert again.status_code == 304 and again.headers["etag"] == etag
            stale = await client.get(
                f"/v1/accounts/{account}", headers={**READ, "If-None-Match": '"v-old"'}
            )
            assert stale.status_code == 200 and stale.headers["etag"] == etag
            assert stale.content == full.content
        missing = {**READ, "If-None-Match": '"v-old"'}
        assert (await client.get("/v1/accounts/missing.com", headers=missing)).status_code == 404
        assert (await client.get("/v1/accounts/missing.com", headers=READ)).status_code == 404


async def test_the_account_etag_changes_with_every_write_it_depends_on(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    async def etag() -> str:
        return (await api.get("/v1/accounts/acct03.com", headers=READ)).headers["etag"]

    async def changed_from(previous: str) -> str:
        """The next different ETag: a writer's notification reaches the API soon after its
        commit, not before the commit returns (a tag left stale fails after 100 polls)."""
        for _ in range(100):
            tag = await etag()
            if tag != previous:
                return tag
            await asyncio.sleep(0.05)
        return previous

    first = await etag()
    assert first == await etag()
    ended = SurgeEnded(
        event_id="s1-end",
        occurred_at=T0,
        received_at=T0,
        account="acct03.com",
        source="intent",
        topic="pricing",
        score=20,
        baseline=1,
        observed=1,
        detector_version="t",
    )
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await intent_repository.record_surges(session, [ended])
    after_surge = await changed_from(first)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        state = (await funnel_repository.load_accounts(session, ["acct03.com"], StateCache(1)))[
            "acct03.com"
        ]
        await funnel_repository.save_accounts(
            session, [state], StateCache(1)
        )  # same state, new write
    await engine.dispose()
    after_write = await changed_from(after_surge)
    body = (await api.get("/v1/accounts/acct03.com", headers=READ)).json()
    assert len({first, after_surge, after_write}) == 3 and body["surges"] == []
    assert (await api.get("/v1/accounts/missing.com", headers=READ)).status_code == 404


async def test_pages_cover_every_account_once_in_any_sort(api: httpx.AsyncClient) -> None:
    for sort in ("domain", "-fit_score", "updated_at", "-updated_at"):
        seen: list[str] = []
        cursor = None
        while True:
            params = {"limit": 4, "sort": sort, **({"cursor": cursor} if cursor else {})}
            page = (await api.get("/v1/accounts", params=params, headers=READ)).json()
            seen += [item["domain"] for item in page["items"]]
            cursor = page["next_cursor"]
            if cursor is None:
                break
        assert sorted(seen) == [f"acct{i:02d}.com" for i in range(25)], sort
    by_fit = (await api.get("/v1/accounts", params={"sort": "-fit_score"}, headers=READ)).json()[
        "items"
    ]
    assert [a["fit_score"] for a in by_fit] == sorted(
        (a["fit_score"] for a in by_fit), reverse=True
    )


async def test_filters_and_sparse_fields(api: httpx.AsyncClient) -> None:
    async def domains(**params: Any) -> list[str]:
        page = (await api.get("/v1/accounts", params=params, headers=READ)).json()
        return [item["domain"] for item in page["items"]]

    assert len(await domains(stage="engaged")) == 10
    assert await domains(surging="true") == ["acct03.com"]
    assert await domains(topic="pricing") == ["acct03.com"]
    assert all(int(d[4:6]) % 2 for d in await domains(owner="ann"))
    assert await domains(changed_since="2026-04-01T00:20:00Z", stage="target") == [
        f"acct{i:02d}.com" for i in range(20, 25)
    ]
    sparse = (
        await api.get("/v1/accounts", params={"fields": "stage", "limit": 1}, headers=READ)
    ).json()
    assert sparse["items"] == [{"domain": "acct00.com", "stage": "engaged"}]


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"stage": "lost"}, "stage"),
        ({"sort": "password"}, "sort"),
        ({"cursor": "@@"}, "cursor"),
        ({"limit": 100_000}, "limit"),
        ({"fields": "secret"}, "fields"),
        ({"tier": 7}, "tier"),
        ({"fit_min": 90, "fit_max": 10}, "fit_min"),
        ({"changed_since": "yesterday"}, "changed_since"),
    ],
)
async def test_bad_parameters_are_4xx_problems_naming_the_field(
    api: httpx.AsyncClient, params: dict[str, Any], field: str
) -> None:
    response = await api.get("/v1/accounts", params=params, headers=READ)
    assert 400 <= response.status_code < 500
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["field"] == field


async def test_surges_listing_and_funnel(api: httpx.AsyncClient) -> None:
    surges = (await api.get("/v1/surges", params={"active": "true"}, headers=READ)).json()
    assert [(s["account"], s["topic"], s["ended_at"]) for s in surges["items"]] == [
        ("acct03.com", "pricing", None)
    ]
    assert (await api.get("/v1/surges", params={"topic": "other"}, headers=READ)).json()[
        "items"
    ] == []
    funnel = (await api.get("/v1/funnel", headers=READ)).json()
    assert [(s["stage"], s["accounts"], s["reached"]) for s in funnel["stages"][:2]] == [
        ("target", 15, 25),
        ("engaged", 10, 10),
    ]


def surge(event_id: str, account: str, topic: str, started: timedelta) -> SurgeStarted:
    return SurgeStarted(
        event_id=event_id,
        occurred_at=T0 + started,
        received_at=T0,
        account=account,
        source="intent",
        topic=topic,
        score=80,
        baseline=1,
        observed=9,
        detector_version="t",
    )


async def test_surges_newest_change_first_and_since(api: httpx.AsyncClient, pg_url: str) -> None:
    # Seeded: s1 on acct03.com started at T0, still active. A surge that started a month
    # ago and just ended is the newest change; one started at T0 + 1 h comes next.
    long_one = surge("long", "acct05.com", "security", -timedelta(days=30))
    ended = SurgeEnded(
        **{
            **long_one.model_dump(exclude={"type", "competitor"}),
            "event_id": "long-end",
            "occurred_at": T0 + timedelta(hours=2),
        }
    )
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        await intent_repository.record_surges(
            session, [long_one, ended, surge("new", "acct07.com", "pricing", timedelta(hours=1))]
        )
    await engine.dispose()

    async def listing(**params: Any) -> list[tuple[str, str]]:
        response = await api.get("/v1/surges", params=params, headers=READ)
        assert response.status_code == 200, response.text
        return [(s["event_id"], s["changed_at"]) for s in response.json()["items"]]

    newest_first = [
        ("long", "2026-04-01T02:00:00Z"),
        ("new", "2026-04-01T01:00:00Z"),
        ("s1", "2026-04-01T00:00:00Z"),
    ]
    assert await listing() == newest_first
    paged, cursor = [], None
    while True:
        params = {"limit": 1, **({"cursor": cursor} if cursor else {})}
        body = (await api.get("/v1/surges", params=params, headers=READ)).json()
        paged += [s["event_id"] for s in body["items"]]
        if not (cursor := body["next_cursor"]):
            break
    assert paged == ["long", "new", "s1"]
    # since: at or after the same moment, in any zone
    assert await listing(since="2026-04-01T01:00:00Z") == newest_first[:2]
    assert await listing(since="2026-04-01T03:00:00+02:00") == newest_first[:2]
    assert await listing(since="2026-04-01T01:00:01Z", active="false") == newest_first[:1]
    for bad in ("yesterday", "2026-04-01T01:00:00", "2026-13-01T00:00:00Z"):
        response = await api.get("/v1/surges", params={"since": bad}, headers=READ)
        assert response.status_code == 400, (bad, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert response.json()["field"] == "since"


async def test_rate_limit_answers_429_with_headers(pg_url: str) -> None:
    await seed(pg_url)
    async with serving(pg_url, api_rate_limit_burst=3, api_rate_limit_per_minute=6) as client:
        responses = [await client.get("/v1/funnel", headers=READ) for _ in range(4)]
    assert [r.status_code for r in responses[:3]] == [200, 200, 200]
    assert [r.headers["ratelimit-remaining"] for r in responses[:3]] == ["2", "1", "0"]
    assert responses[0].headers["ratelimit-limit"] == "3"
    assert responses[3].status_code == 429 and int(responses[3].headers["retry-after"]) >= 1
    assert responses[3].headers["content-type"] == "application/problem+json"


async def test_a_customer_surging_on_a_competitor_is_a_churn_risk(
    api: httpx.AsyncClient, pg_url: str
) -> None:
    won = OpportunityChanged(
        type="opportunity_won",
        event_id="w1",
        occurred_at=T0,
        received_at=T0,
        account="acct05.com",
        source="crm",
        opportunity_id="o1",
        amount=50_000,
    )
    renewed = OpportunityChanged(
        type="opportunity_created",
        event_id="o2",
        occurred_at=T0,
        received_at=T0,
        account="acct05.com",
        source="crm",
        opportunity_id="o2",
        amount=8_000,
    )
    competitor = SurgeStarted(
        event_id="cs1",
        occurred_at=T0,
        received_at=T0,
        account="acct05.com",
        source="intent",
        topic="competitors",
        score=90,
        baseline=1,
        observed=20,
        detector_version="t",
        competitor=True,
    )
    engine = db.create_engine(url=pg_url)
    async with db.create_sessionmaker(engine)() as session, session.begin():
        states = await funnel_repository.load_accounts(session, ["acct05.com"], StateCache(1))
        changed, _ = apply_events(states, [won, renewed], FunnelConfig())
        await funnel_repository.save_accounts(session, changed.values(), StateCache(1))
        await intent_repository.record_surges(session, [competitor])
    await engine.dispose()
    body = (await api.get("/v1/accounts/acct05.com", headers=READ)).json()
    assert body["stage"] == "won" and body["churn_risk"] is True
    assert body["revenue"] == {
        "pipeline": 8000.0,
        "won": 50000.0,
        "renewals": 0.0,
        "expansion": 0.0,
    }
    assert [s["competitor"] for s in body["surges"]] == [True]
    assert body["activity"]["visits"] == 1
    other = (await api.get("/v1/accounts/acct03.com", headers=READ)).json()
    assert other["churn_risk"] is False  # surging, but on pricing and not a customer


async def test_funnel_report_for_a_period_and_a_tier(api: httpx.AsyncClient) -> None:
    async def stages(**params: Any) -> dict[str, dict[str, Any]]:
        body = (await api.get("/v1/funnel", params=params, headers=READ)).json()
        return {s["stage"]: s for s in body["stages"]}

    everything = await stages()
    assert (everything["target"]["entered"], everything["engaged"]["entered"]) == (25, 10)
    # The ten engaged accounts entered target at T0 + i minutes (i < 10) and moved at T0 + 1 h.
    assert everything["target"]["median_days_in_stage"] == round(55.5 / 1440, 4)  # as sent
    later = await stages(**{"from": "2026-04-01T00:30:00Z", "to": "2026-04-02T00:00:00Z"})
    assert (later["target"]["entered"], later["engaged"]["entered"]) == (0, 10)
    tiers = {t: await stages(tier=t) for t in (1, 2, 3)}
    assert sum(t["target"]["accounts"] + t["engaged"]["accounts"] for t in tiers.values()) == 25
    bad = await api.get(
        "/v1/funnel",
        params={"from": "2026-05-01T00:00:00Z", "to": "2026-04-01T00:00:00Z"},
        headers=READ,
    )
    assert bad.status_code == 400 and bad.json()["field"] == "from"
