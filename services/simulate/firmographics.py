"""Synthetic companies with believable firmographics; about 70% fit the ICP.

The ICP the simulation aims at (the platform's example ICP): software, SaaS or fintech;
based in the US, GB, DE or CA; 50 to 5,000 employees; annual revenue of $5M or more;
runs Salesforce, HubSpot, Marketo or NetSuite; funded. A company outside the ICP is off
the industry and misses two more criteria, so that no fit score mistakes it for a target.
"""

from __future__ import annotations

import math
import random
import re
from dataclasses import dataclass
from typing import Any

FIT_INDUSTRIES = ("software", "saas", "fintech")
FIT_COUNTRIES = ("US", "GB", "DE", "CA")
FIT_COUNTRY_WEIGHTS = (6, 2, 1, 1)
OTHER_COUNTRIES = ("FR", "BR", "IN", "JP", "AU", "ES", "IT", "MX")
ICP_TECHNOLOGIES = ("salesforce", "hubspot", "marketo", "netsuite")
OTHER_TECHNOLOGIES = (
    "slack", "snowflake", "aws", "zendesk", "jira", "google-workspace", "shopify", "quickbooks",
)  # fmt: skip
FUNDED = ("seed", "series_a", "series_b", "series_c", "series_d", "public")
TLDS = {"GB": "co.uk", "DE": "de", "CA": "ca", "FR": "fr", "BR": "com.br", "JP": "jp"}

NAME_STEMS = (
    "Acme", "Northwind", "Bluefin", "Brightpath", "Cobalt", "Evergreen", "Fathom", "Granite",
    "Harbor", "Ironclad", "Juniper", "Keystone", "Lumen", "Meridian", "Nimbus", "Orchard",
    "Pinnacle", "Quartz", "Redwood", "Summit", "Tidewater", "Vertex", "Willow", "Zephyr",
    "Atlas", "Beacon", "Cedar", "Driftwood", "Ember", "Foxglove", "Halcyon", "Kestrel",
)  # fmt: skip
NAME_SUFFIXES = {
    "software": ("Software", "Labs", "Systems", "Analytics"),
    "saas": ("Cloud", "Data", "Analytics", "Networks", "HQ"),
    "fintech": ("Payments", "Ledger", "Pay", "Capital Tech"),
    "retail": ("Outfitters", "Market", "Home Goods"),
    "manufacturing": ("Manufacturing", "Works", "Industries"),
    "hospitality": ("Hotels", "Hospitality", "Resorts"),
    "construction": ("Builders", "Construction"),
    "education": ("Academy", "Learning"),
    "logistics": ("Logistics", "Freight"),
}
OTHER_INDUSTRIES = (
    "retail",
    "manufacturing",
    "hospitality",
    "construction",
    "education",
    "logistics",
)
_MISSABLE = ("country", "size", "technologies", "funding")


@dataclass(frozen=True, slots=True)
class Account:
    index: int
    name: str
    domain: str
    industry: str
    country: str
    employees: int
    annual_revenue: int
    technologies: tuple[str, ...]
    funding: str
    customer_count: int
    fits_icp: bool
    explicit_target: bool = False

    @property
    def is_target(self) -> bool:
        return self.fits_icp or self.explicit_target

    def traits(self) -> dict[str, Any]:
        """The ``group`` traits; ``target`` only when marked, otherwise fit decides."""
        traits: dict[str, Any] = {
            "name": self.name,
            "website": f"https://www.{self.domain}",
            "industry": self.industry,
            "country": self.country,
            "employees": self.employees,
            "annual_revenue": self.annual_revenue,
            "technologies": list(self.technologies),
            "funding": self.funding,
            "customer_count": self.customer_count,
        }
        if self.explicit_target:
            traits["target"] = True
        return traits


def make_accounts(count: int, rng: random.Random, *, fit_share: float = 0.7) -> list[Account]:
    """``count`` companies with unique names and domains; a few are explicitly targeted."""
    fitting = set(rng.sample(range(count), round(count * fit_share)))
    explicit = _explicit_targets(sorted(fitting), rng, share=0.05)
    explicit |= _explicit_targets(sorted(set(range(count)) - fitting), rng, share=0.1)
    used: set[str] = set()
    accounts = []
    for index in range(count):
        misses = () if index in fitting else ("industry", *rng.sample(_MISSABLE, 2))
        accounts.append(_account(index, misses, index in explicit, used, rng))
    return accounts


def _explicit_targets(indexes: list[int], rng: random.Random, *, share: float) -> set[int]:
    if not indexes:
        return set()
    return set(rng.sample(indexes, max(1, round(len(indexes) * share))))


def _account(
    index: int, misses: tuple[str, ...], explicit: bool, used: set[str], rng: random.Random
) -> Account:
    industry = rng.choice(OTHER_INDUSTRIES if "industry" in misses else FIT_INDUSTRIES)
    if "country" in misses:
        country = rng.choice(OTHER_COUNTRIES)
    else:
        country = rng.choices(FIT_COUNTRIES, FIT_COUNTRY_WEIGHTS)[0]
    employees, revenue = _size(small="size" in misses, rng=rng)
    name = _unique_name(industry, used, rng)
    return Account(
        index=index,
        name=name,
        domain=_domain(name, index, country, rng),
        industry=industry,
        country=country,
        employees=employees,
        annual_revenue=revenue,
        technologies=_technologies(icp="technologies" not in misses, rng=rng),
        funding="bootstrapped" if "funding" in misses else rng.choice(FUNDED),
        customer_count=max(3, round(employees * rng.uniform(0.5, 12))),
        fits_icp=not misses,
        explicit_target=explicit,
    )


def _size(*, small: bool, rng: random.Random) -> tuple[int, int]:
    """Employees (log-uniform) and annual revenue in dollars, which follows headcount."""
    low, high = (4, 40) if small else (50, 5000)
    employees = round(math.exp(rng.uniform(math.log(low), math.log(high))))
    per_head = rng.uniform(40_000, 110_000) if small else rng.uniform(120_000, 260_000)
    revenue = round(employees * per_head, -5)
    return employees, int(revenue if small else max(revenue, 6_000_000))


def _technologies(*, icp: bool, rng: random.Random) -> tuple[str, ...]:
    stack = rng.sample(OTHER_TECHNOLOGIES, rng.randint(1, 3))
    if icp:
        stack += rng.sample(ICP_TECHNOLOGIES, rng.randint(1, 2))
    return tuple(sorted(stack))


def _unique_name(industry: str, used: set[str], rng: random.Random) -> str:
    for _ in range(50):
        name = f"{rng.choice(NAME_STEMS)} {rng.choice(NAME_SUFFIXES[industry])}"
        if name not in used:
            break
    else:
        name = f"{name} {len(used)}"
    used.add(name)
    return name


def _domain(name: str, index: int, country: str, rng: random.Random) -> str:
    """``acmeanalytics17.com``: the index keeps domains unique across any run size."""
    slug = re.sub(r"[^a-z0-9]", "", name.lower())
    tld = TLDS.get(country) or ("io" if rng.random() < 0.25 else "com")
    return f"{slug}{index}.{tld}"
