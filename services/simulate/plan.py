"""Who takes part in one account's journey, and when each contact becomes known.

A ``Plan`` is decided before any message is written: the timeline, the website visitors
(some resolved by their company's IP from the first visit, one maybe anonymous until a
form fill identifies them), the buying committee, the deal size and a possible web
research spike. The writers in ``journeys`` and ``sales`` only turn it into messages.
"""

from __future__ import annotations

import random
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from services.simulate.firmographics import Account
from services.simulate.segment import Who
from services.simulate.timeline import (
    CUSTOMER_OUTCOMES,
    Outcome,
    Timeline,
    make_timeline,
)

FIRST_NAMES = (
    "Ada", "Ben", "Chloe", "Dev", "Elena", "Farid", "Grace", "Hiro", "Isla", "Jonas", "Keira",
    "Liam", "Maya", "Nils", "Olivia", "Priya", "Quinn", "Rosa", "Sam", "Tariq", "Uma", "Victor",
)  # fmt: skip
LAST_NAMES = (
    "Adams", "Becker", "Chen", "Dubois", "Evans", "Fischer", "Garcia", "Hughes", "Iyer",
    "Jensen", "Kowalski", "Lopez", "Meyer", "Novak", "Okafor", "Patel", "Russo", "Silva",
)  # fmt: skip
CHAMPION_TITLES = ("Head of Demand Generation", "Marketing Operations Manager", "VP Marketing")
COMMITTEE_TITLES = (
    "CMO", "CFO", "Director of Sales", "RevOps Lead", "IT Manager", "Procurement Manager",
    "Head of Growth", "Sales Operations Analyst",
)  # fmt: skip
USER_AGENTS = (
    "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    " Version/17.4 Safari/605.1.15",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/124.0.0.0 Safari/537.36",
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:125.0) Gecko/20100101 Firefox/125.0",
    "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko)"
    " Chrome/123.0.0.0 Safari/537.36",
)
IP_BLOCKS = ("192.0.2", "198.51.100", "203.0.113")  # reserved for documentation
SPIKE_OUTCOMES = frozenset({Outcome.ENGAGED, Outcome.OPPORTUNITY, Outcome.WON, Outcome.EXPANSION})


@dataclass(frozen=True, slots=True)
class Contact:
    user_id: str
    email: str
    name: str
    title: str
    identified_at: datetime

    def who(self, domain: str) -> Who:
        """Server-side calls about this contact (email, calendar, surveys)."""
        return Who(user_id=self.user_id, group_id=domain)


@dataclass(frozen=True, slots=True)
class Visitor:
    """A browser on the website. ``resolved``: its IP names the company from the start."""

    anonymous_id: str
    ip: str
    user_agent: str
    resolved: bool
    contact: Contact | None = None

    def identified(self, at: datetime) -> bool:
        return self.contact is not None and at >= self.contact.identified_at

    def who(self, at: datetime, domain: str) -> Who:
        """What the tracking tag knows at ``at``: the account only once it is known."""
        identified = self.identified(at)
        return Who(
            anonymous_id=self.anonymous_id,
            user_id=self.contact.user_id if self.contact and identified else None,
            group_id=domain if self.resolved or identified else None,
            ip=self.ip,
            user_agent=self.user_agent,
        )


@dataclass(frozen=True, slots=True)
class Plan:
    account: Account
    timeline: Timeline
    visitors: tuple[Visitor, ...]
    contacts: tuple[Contact, ...]
    acv: int
    spike_at: datetime | None = None

    @property
    def domain(self) -> str:
        return self.account.domain

    @property
    def outcome(self) -> Outcome:
        return self.timeline.outcome

    @property
    def start(self) -> datetime:
        return self.timeline.start

    @property
    def system(self) -> Who:
        """The CRM and billing sync: account-level calls, named by ``context.groupId``."""
        return Who(user_id=f"crm:{self.domain}", group_id=self.domain)

    def resolved_visitors(self) -> list[Visitor]:
        return [v for v in self.visitors if v.resolved]


def plan_journey(account: Account, outcome: Outcome, start: datetime, rng: random.Random) -> Plan:
    timeline = make_timeline(outcome, start, rng)
    contacts = _contacts(timeline, account.domain, rng)
    spike = start - timedelta(hours=rng.uniform(2, 144))
    return Plan(
        account,
        timeline,
        visitors=_visitors(account.index, contacts, rng),
        contacts=contacts,
        acv=_acv(account, rng),
        spike_at=spike if outcome in SPIKE_OUTCOMES and rng.random() < 0.3 else None,
    )


def between(rng: random.Random, low: datetime, high: datetime) -> datetime:
    """A moment uniformly in [low, high] (``low`` when the window is empty)."""
    span = (high - low).total_seconds()
    return low + timedelta(seconds=rng.uniform(0, span)) if span > 0 else low


def _committee_size(outcome: Outcome, rng: random.Random) -> int:
    if outcome is Outcome.ENGAGED:
        return 0 if rng.random() < 0.4 else rng.randint(1, 2)
    if outcome in (Outcome.OPPORTUNITY, Outcome.LOST):
        return rng.randint(2, 4)
    return rng.randint(3, 6) if outcome in CUSTOMER_OUTCOMES else 0


def _contacts(timeline: Timeline, domain: str, rng: random.Random) -> tuple[Contact, ...]:
    """The buying committee: a champion found first, the others while the deal runs."""
    size = _committee_size(timeline.outcome, rng)
    engaged, end = timeline.engaged, timeline.presale_end
    if size == 0 or engaged is None:
        return ()
    first = engaged + ((timeline.opportunity or end) - engaged) * rng.uniform(0.1, 0.5)
    moments = [first, *sorted(between(rng, first, end) for _ in range(size - 1))]
    used: set[str] = set()
    contacts = []
    for number, at in enumerate(moments):
        titles = CHAMPION_TITLES if number == 0 else COMMITTEE_TITLES
        contacts.append(_contact(domain, rng.choice(titles), at, used, rng))
    return tuple(contacts)


def _contact(domain: str, title: str, at: datetime, used: set[str], rng: random.Random) -> Contact:
    first, last = rng.choice(FIRST_NAMES), rng.choice(LAST_NAMES)
    local = f"{first}.{last}".lower()
    if local in used:
        local = f"{local}{len(used)}"
    used.add(local)
    return Contact(
        user_id=f"usr_{rng.getrandbits(48):012x}",
        email=f"{local}@{domain}",
        name=f"{first} {last}",
        title=title,
        identified_at=at,
    )


def _visitors(index: int, contacts: tuple[Contact, ...], rng: random.Random) -> tuple[Visitor, ...]:
    """Office visitors resolved by IP, plus the champion's browser (anonymous ~35%).

    An anonymous champion browses from home (an IPv6 documentation address), so no
    company IP range can name the account before the form fill does.
    """
    office = f"{IP_BLOCKS[index % 3]}.{index // 3 % 254 + 1}"
    visitors = [
        Visitor(_anonymous_id(rng), office, rng.choice(USER_AGENTS), resolved=True)
        for _ in range(rng.randint(1, 3))
    ]
    if contacts:
        anonymous = rng.random() < 0.35
        ip = f"2001:db8:{rng.getrandbits(16):x}::{rng.getrandbits(16):x}" if anonymous else office
        champion = Visitor(
            _anonymous_id(rng), ip, rng.choice(USER_AGENTS), not anonymous, contacts[0]
        )
        visitors.insert(0, champion)
    return tuple(visitors)


def _anonymous_id(rng: random.Random) -> str:
    return str(uuid.UUID(int=rng.getrandbits(128), version=4))


def _acv(account: Account, rng: random.Random) -> int:
    """Annual contract value in dollars, growing with headcount."""
    value = account.employees * rng.uniform(30, 90)
    return int(round(min(max(value, 12_000), 360_000), -2))
