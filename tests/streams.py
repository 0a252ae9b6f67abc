"""Deterministic generated event streams for crash, replay and throughput tests."""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from schemas import topics
from schemas.events import (
    INBOUND_ADAPTER,
    ClockTicked,
    Event,
    InboundEvent,
    SurgeEnded,
    SurgeStarted,
)

START = datetime(2026, 1, 1, tzinfo=UTC)

_JOURNEY: tuple[tuple[str, dict[str, object]], ...] = (
    ("page_viewed", {"url": "https://vendor.example/blog"}),
    ("ad_impressed", {"campaign_id": "c1"}),
    ("ad_clicked", {"campaign_id": "c1"}),
    ("page_viewed", {"url": "https://vendor.example/pricing"}),
    ("email_replied", {"direction": "inbound"}),
    ("opportunity_created", {"opportunity_id": "{opp}", "amount": 50_000}),
    ("meeting_held", {}),
    ("opportunity_won", {"opportunity_id": "{opp}", "amount": 50_000}),
    ("subscription_renewed", {"amount": 55_000}),
    ("subscription_expanded", {"amount": 20_000}),
)


def generate(accounts: int, events_per_account: int, seed: int = 1) -> list[InboundEvent]:
    """Interleaved journeys: each account is upserted, then walks (part of) the funnel with
    noise, some lose an opportunity or churn; about 2% of events are re-sent duplicates."""
    rng = random.Random(seed)
    per_account = [_account_events(i, events_per_account, rng) for i in range(accounts)]
    stream: list[InboundEvent] = []
    cursors = [0] * accounts
    while any(c < len(e) for c, e in zip(cursors, per_account, strict=True)):
        i = rng.randrange(accounts)
        if cursors[i] < len(per_account[i]):
            stream.append(per_account[i][cursors[i]])
            cursors[i] += 1
            if rng.random() < 0.02:
                stream.append(stream[-1])  # a client retry: same event id
    return stream


def _account_events(index: int, count: int, rng: random.Random) -> list[InboundEvent]:
    domain = f"account-{index:05d}.com"
    at = START + timedelta(hours=rng.randrange(0, 500))
    events = [_event("account_upserted", domain, at, rng, {
        "name": f"Account {index}", "industry": "software", "country": "US", "employees": 500,
        "annual_revenue": 40_000_000, "target": rng.random() < 0.9})]  # fmt: skip
    depth = rng.randrange(1, len(_JOURNEY) + 1)
    opp = f"opp-{index}"
    for n in range(count - 1):
        at += timedelta(hours=rng.randrange(1, 96))
        kind, fields = _JOURNEY[min(n * depth // max(count - 1, 1), depth - 1)]
        if rng.random() < 0.5:
            kind, fields = "page_viewed", {"url": f"https://vendor.example/p{rng.randrange(9)}"}
        elif kind == "opportunity_created" and rng.random() < 0.1:
            kind, fields = "opportunity_lost", {"opportunity_id": opp}
        elif kind == "subscription_renewed" and rng.random() < 0.15:
            kind, fields = "subscription_churned", {}
        concrete = {k: (v.format(opp=opp) if isinstance(v, str) else v) for k, v in fields.items()}
        events.append(_event(kind, domain, at, rng, concrete))
    return events


def _event(
    kind: str, domain: str | None, at: datetime, rng: random.Random, fields: dict[str, object]
) -> InboundEvent:
    return INBOUND_ADAPTER.validate_python(
        {
            "type": kind,
            "event_id": str(uuid.UUID(int=rng.getrandbits(128))),
            "occurred_at": at,
            "received_at": at,
            "account": domain,
            "source": "generator",
            **fields,
        }
    )


# --- the whole vocabulary: for crash-equivalence over every fact the funnel keeps ----------

_CONTACTS = (
    ("ceo", "Chief Executive Officer", None),
    ("head.ops", "Head of Operations", None),
    ("it.manager", "IT Manager", None),
    ("dev", "Software Engineer", "user"),
    ("buyer", None, "decision_maker"),
)


@dataclass(frozen=True)
class FullStream:
    """A stream using every kind of fact the funnel keeps, in three parts to produce one
    after the other (events from two topics interleave at random when consumed together,
    so a consumer's order is only defined part by part):

    - ``events`` (events topic): the journeys of ``generate``, plus contacts with titles and
      roles, two-way email, meetings, chats, forms, NPS answers, campaign spend (some on no
      account), anonymous and bot visits, email-signature impressions, intent signals, and
      a round of clock ticks (one per partition) every ``tick_every`` events;
    - ``surges`` (surges topic): surges starting and ending near each surging account's
      latest activity, some on the first-party web topic, some on competitors;
    - ``tail`` (events topic): later activity of some accounts, old events sent again (a
      sender's late retry, long after its id left the state's recent keys), and two rounds
      of ticks long after the last event, which lapse engagements and age tiers.
    """

    events: list[Event]
    surges: list[Event]
    tail: list[Event]

    def applied_order(self) -> list[Event]:
        """Every part in order, each event id once: what the pure core should apply."""
        unique: dict[str, Event] = {}
        for event in (*self.events, *self.surges, *self.tail):
            first = unique.setdefault(event.event_id, event)
            if first != event:  # which one is applied would depend on consumption order
                raise ValueError(f"two events with id {event.event_id}")
        return list(unique.values())


def generate_full(
    accounts: int, events_per_account: int, seed: int = 1, tick_every: int = 2000
) -> FullStream:
    rng = random.Random(f"full-{seed}")  # not the journeys' generator: its ids would repeat
    journeys = generate(accounts, events_per_account, seed)
    events: list[Event] = []
    latest: dict[str, datetime] = {}
    for n, event in enumerate(journeys):
        domain = event.account or ""
        latest[domain] = max(latest.get(domain, event.occurred_at), event.occurred_at)
        events.append(event)
        extra = _extra_event(domain, event, rng)
        if extra is not None:
            events.append(extra)
        if n % tick_every == tick_every - 1:
            events.extend(_tick_round(event.occurred_at))
    surging = rng.sample(sorted(latest), k=max(1, accounts // 4))
    surges = [s for domain in surging for s in _surges(domain, latest[domain], rng)]
    tail = [
        e for domain in surging[: len(surging) // 2] for e in _later(domain, latest[domain], rng)
    ]
    tail += rng.sample(events, k=min(50, len(events)))  # re-sent long after
    # Then silence: engagements lapse and recent signals age out, on the ticks alone.
    end = max(latest.values())
    tail += [*_tick_round(end + timedelta(days=100)), *_tick_round(end + timedelta(days=200))]
    return FullStream(events=events, surges=surges, tail=tail)


def _extra_event(domain: str, event: InboundEvent, rng: random.Random) -> Event | None:
    """Now and then (a quarter of the time), another kind of fact at about the time of
    ``event``: what a contact did, what was spent, a visitor no one knows yet (kept for its
    facts, moves no account), a crawler on the account's network (tagged, not scored)."""
    at = event.occurred_at + timedelta(minutes=rng.randrange(1, 120))
    local, title, role = _CONTACTS[rng.randrange(len(_CONTACTS))]
    email = f"{local}@{domain}"
    direction = rng.choice(("inbound", "outbound"))
    extras: list[tuple[str, str | None, dict[str, object]]] = [
        ("contact_identified", domain, {"contact_email": email, "title": title, "role": role}),
        ("contact_identified", domain, {"contact_email": email, "title": title, "role": role}),
        ("email_replied" if direction == "inbound" else "email_sent", domain,
         {"contact_email": email, "direction": direction}),
        ("email_sent", domain, {"contact_email": email}),
        ("meeting_held", domain, {"attendees": [email, "ae@vendor.example"]}),
        ("chat_started", domain, {"contact_email": email}),
        ("form_submitted", domain, {"contact_email": email, "form_id": "demo"}),
        ("nps_submitted", domain, {"score": rng.randrange(11), "contact_email": email}),
        ("ad_impressed", domain, {"campaign_id": "sig", "channel": "email_signature"}),
        ("intent_signal_received", domain, {"topic": "data warehouse", "score": 70}),
        ("campaign_spent", rng.choice((domain, None)),
         {"channel": rng.choice(("display", "linkedin")), "amount": 120.0, "campaign_id": "c1",
          "period_start": at.date()}),
        ("page_viewed", None, {"url": "https://vendor.example/"}),
        ("account_upserted", domain,
         {"employees": rng.choice((40, 5000, 30000)), "technologies": ["snowflake"],
          "industry": rng.choice(("software", "retail")),
          "target": rng.choice((None, True, False))}),
        ("page_viewed", domain, {"url": "https://vendor.example/pricing"}),
    ]  # fmt: skip
    pick = rng.randrange(4 * len(extras))
    if pick >= len(extras):
        return None
    kind, account, fields = extras[pick]
    extra = _event(kind, account, at, rng, fields)
    if account is None and kind == "page_viewed":
        return extra.model_copy(update={"anonymous_id": f"v-{rng.getrandbits(32):08x}"})
    if pick == len(extras) - 1:
        return extra.model_copy(update={"is_bot": True})
    return extra


def _tick_round(at: datetime) -> list[Event]:
    return [
        ClockTicked(
            event_id=f"tick-{partition}-{at.isoformat()}",
            occurred_at=at,
            received_at=at,
            source="generator",
            partition=partition,
        )
        for partition in range(topics.EVENTS.partitions)
    ]


def _surges(domain: str, latest: datetime, rng: random.Random) -> list[Event]:
    topic = rng.choice(("web", "data warehouse", "competitor-x"))
    fields: dict[str, object] = {
        "account": domain, "source": "intent", "topic": topic, "baseline": 1.5,
        "observed": 9.0, "detector_version": "nb-1", "competitor": topic == "competitor-x",
    }  # fmt: skip
    started = latest - timedelta(days=rng.randrange(0, 20))
    ended = started + timedelta(days=rng.randrange(1, 10))
    return [
        SurgeStarted(event_id=str(uuid.UUID(int=rng.getrandbits(128))), occurred_at=started,
                     received_at=started, score=float(rng.randrange(60, 100)), **fields),
        SurgeEnded(event_id=str(uuid.UUID(int=rng.getrandbits(128))), occurred_at=ended,
                   received_at=ended, score=20.0, **fields),
    ]  # fmt: skip


def _later(domain: str, latest: datetime, rng: random.Random) -> list[Event]:
    at = latest
    later: list[Event] = []
    for _ in range(5):
        at += timedelta(hours=rng.randrange(1, 72))
        later.append(
            _event("page_viewed", domain, at, rng, {"url": "https://vendor.example/pricing"})
        )
    return later
