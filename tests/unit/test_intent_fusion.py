"""Intent inputs beyond one account's own baseline: the population on the topic, source
weights and freshness, internal traffic, competitor topics (churn risk)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from schemas.events import Event, IntentSignalReceived, PageViewed, SurgeStarted
from services.intent.config import IntentConfig
from services.intent.metrics import newest_by_source
from services.intent.processing import apply_events, topics_for

T0 = datetime(2024, 3, 4, 10, 0, tzinfo=UTC)
_ids = iter(range(10**9))


def page(account: str, at: datetime, url: str = "https://v.io/pricing", **kw: Any) -> PageViewed:
    return PageViewed(event_id=f"pv-{next(_ids)}", occurred_at=at, received_at=at,
                      account=account, source="web", url=url, **kw)  # fmt: skip


def signal(account: str, at: datetime, **kw: Any) -> IntentSignalReceived:
    fields: dict[str, Any] = {"source": "api", "topic": "crm", "count": 2} | kw
    return IntentSignalReceived(event_id=f"is-{next(_ids)}", occurred_at=at, received_at=at,
                                account=account, **fields)  # fmt: skip


def history(accounts: list[str], days: int = 21) -> list[Event]:
    return [page(a, T0 + timedelta(days=d, minutes=i)) for d in range(days)
            for i, a in enumerate(accounts)]  # fmt: skip


def burst(account: str, at: datetime, n: int = 30) -> list[Event]:
    return [page(account, at + timedelta(seconds=20 * i)) for i in range(n)]


def started(outputs: list[Any], account: str) -> list[str]:
    return [o.topic for o in outputs if isinstance(o, SurgeStarted) and o.account == account]


def test_a_topic_surging_for_everyone_is_not_an_account_surge() -> None:
    config = IntentConfig(population_partitions=1)  # one population: all accounts
    accounts = [f"a{i}.com" for i in range(20)]
    hour = T0 + timedelta(days=21, hours=3)
    everyone = sorted(
        (e for a in accounts[1:] for e in burst(a, hour)), key=lambda e: e.occurred_at
    )
    late = burst(accounts[0], hour + timedelta(minutes=30))

    _, alone = apply_events({}, [*history(accounts), *late], config)
    _, crowd = apply_events({}, [*history(accounts), *everyone, *late], config)

    assert started(alone, accounts[0]) == ["web", "pricing"]
    assert started(crowd, accounts[0]) == []


def test_without_population_the_crowd_does_not_matter() -> None:
    config = IntentConfig(population_partitions=0)
    accounts = [f"a{i}.com" for i in range(5)]
    hour = T0 + timedelta(days=21, hours=3)
    events = [*history(accounts), *(e for a in accounts[1:] for e in burst(a, hour))]
    _, outputs = apply_events({}, [*events, *burst(accounts[0], hour)], config)
    assert started(outputs, accounts[0]) == ["web", "pricing"]


def test_sources_are_weighted_and_unknown_ones_get_the_default() -> None:
    config = IntentConfig(source_weights={"web": 1, "Bombora": 0.5}, other_source_weight=0.25)
    assert topics_for(signal("x.com", T0, provider="bombora", count=8), config) == [("crm", 4.0)]
    assert topics_for(signal("x.com", T0, provider="g2", count=8), config) == [("crm", 2.0)]
    assert topics_for(signal("x.com", T0, count=8), config) == [("crm", 2.0)]  # source "api"
    assert topics_for(page("x.com", T0, "https://v.io/"), config) == [("web", 1.0)]
    muted = IntentConfig(source_weights={"web": 0})
    assert topics_for(page("x.com", T0), muted) == []


def test_internal_traffic_and_bots_are_excluded() -> None:
    config = IntentConfig(internal_domains=frozenset({"Vendor.io"}))
    assert topics_for(page("vendor.io", T0), config) == []
    assert topics_for(page("eu.vendor.io", T0), config) == []
    assert topics_for(page("notvendor.io", T0), config) != []
    assert topics_for(page("acme.com", T0, is_bot=True), config) == []


def test_competitor_surges_carry_the_churn_risk_flag() -> None:
    config = IntentConfig(url_topics={"/vs/": "rival-x"}, competitor_topics=frozenset({"Rival-X"}))
    comparison = [page("acme.com", T0 + timedelta(days=21, hours=3, seconds=i),
                       "https://v.io/vs/rival") for i in range(30)]  # fmt: skip
    _, outputs = apply_events({}, [*history(["acme.com"]), *comparison], config)
    flags = {o.topic: o.competitor for o in outputs if isinstance(o, SurgeStarted)}
    assert flags == {"web": None, "rival-x": True}


def test_newest_signal_per_source_label() -> None:
    config = IntentConfig(source_weights={"web": 1, "bombora": 1})
    events: list[Event] = [
        page("a.com", T0),
        page("a.com", T0 + timedelta(hours=1)),
        signal("a.com", T0 + timedelta(hours=2), provider="bombora"),
        signal("a.com", T0 + timedelta(hours=3), provider="someone-else"),
        signal("a.com", T0 + timedelta(hours=9), provider="bombora", is_bot=True),  # ignored
    ]
    assert newest_by_source(events, config) == {
        "web": T0 + timedelta(hours=1),
        "bombora": T0 + timedelta(hours=2),
        "other": T0 + timedelta(hours=3),
    }
