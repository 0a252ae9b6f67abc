"""Propose ICP criteria from the customers that stayed (pure).

domain.md: look at the accounts that renewed at least once (two or more deal cycles) and
find the attribute values they share far more often than the rest. For each value:
support = share of retained accounts with it, base = share of all accounts with it,
lift = support / base. Values with enough support and lift become the criteria; numeric
attributes are compared by band and the kept bands' hull becomes the range. Each
criterion's weight follows its strongest lift, scaled so the weights add up to 100.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass

from services.funnel.config import IcpConfig, RangeCriterion, ValuesCriterion
from services.funnel.fit import Firmographics

Band = tuple[float, float | None]  # [low, high), high None: open

EMPLOYEE_BANDS: tuple[Band, ...] = (
    (0, 10),
    (10, 50),
    (50, 200),
    (200, 1000),
    (1000, 5000),
    (5000, None),
)
REVENUE_BANDS: tuple[Band, ...] = ((0, 1e6), (1e6, 5e6), (5e6, 2e7), (2e7, 1e8), (1e8, None))
CUSTOMER_BANDS: tuple[Band, ...] = ((0, 100), (100, 1000), (1000, 10_000), (10_000, None))


@dataclass(frozen=True, slots=True)
class Evidence:
    attribute: str
    value: str
    retained: int
    support: float
    base: float

    @property
    def lift(self) -> float:
        return self.support / self.base if self.base else 0.0


@dataclass(frozen=True, slots=True)
class Thresholds:
    min_support: float = 0.2
    min_lift: float = 1.3
    min_retained: int = 5


def suggest_icp(
    accounts: Sequence[tuple[Firmographics, bool]], thresholds: Thresholds = Thresholds()
) -> tuple[IcpConfig, list[Evidence]]:
    """``accounts``: (firmographics, renewed at least once). Returns the ICP and the
    evidence for every value considered, strongest lift first."""
    retained = [f for f, kept in accounts if kept]
    if len(retained) < thresholds.min_retained:
        raise ValueError(f"only {len(retained)} retained accounts: too few to suggest an ICP")
    everyone = [f for f, _ in accounts]
    evidence = {
        name: _evidence(name, values_of, everyone, retained)
        for name, values_of in ATTRIBUTES.items()
    }
    kept = {name: [e for e in items if _keeps(e, thresholds)] for name, items in evidence.items()}
    weights = _weights(kept)
    icp = IcpConfig(
        industries=_values(kept["industry"], weights["industry"]),
        countries=_values(kept["country"], weights["country"]),
        technologies=_values(kept["technologies"], weights["technologies"]),
        funding=_values(kept["funding"], weights["funding"]),
        employees=_range(kept["employees"], EMPLOYEE_BANDS, weights["employees"]),
        annual_revenue=_range(kept["annual_revenue"], REVENUE_BANDS, weights["annual_revenue"]),
        customer_count=_range(kept["customer_count"], CUSTOMER_BANDS, weights["customer_count"]),
        maturity=_values(kept["maturity"], weights["maturity"]) if kept["maturity"] else None,
    )
    ranked = sorted((e for items in evidence.values() for e in items), key=lambda e: -e.lift)
    return icp, ranked


def _evidence(
    attribute: str,
    values_of: Callable[[Firmographics], Iterable[str]],
    everyone: Sequence[Firmographics],
    retained: Sequence[Firmographics],
) -> list[Evidence]:
    base = Counter(v for f in everyone for v in set(values_of(f)))
    support = Counter(v for f in retained for v in set(values_of(f)))
    return [
        Evidence(
            attribute,
            value,
            support[value],
            support[value] / len(retained),
            base[value] / len(everyone),
        )
        for value in sorted(support)
    ]


def _keeps(evidence: Evidence, thresholds: Thresholds) -> bool:
    return evidence.support >= thresholds.min_support and evidence.lift >= thresholds.min_lift


def _weights(kept: dict[str, list[Evidence]]) -> dict[str, float]:
    strength = {name: max((e.lift for e in items), default=0.0) for name, items in kept.items()}
    total = sum(strength.values())
    return {name: round(100 * s / total, 1) if total else 0.0 for name, s in strength.items()}


def _values(kept: list[Evidence], weight: float) -> ValuesCriterion:
    return ValuesCriterion(values=tuple(e.value for e in kept), weight=weight if kept else 0.0)


def _range(kept: list[Evidence], bands: tuple[Band, ...], weight: float) -> RangeCriterion:
    if not kept:
        return RangeCriterion(weight=0.0)
    chosen = [bands[int(e.value.split(":", 1)[0])] for e in kept]
    low = min(band[0] for band in chosen)
    highs = [band[1] for band in chosen]
    return RangeCriterion(
        min=low or None, max=None if None in highs else max(h for h in highs if h), weight=weight
    )


def _text(value: str | None) -> list[str]:
    return [value.strip().lower()] if value and value.strip() else []


def _band(value: float | None, bands: tuple[Band, ...]) -> list[str]:
    if value is None:
        return []
    for index, (low, high) in enumerate(bands):
        if value >= low and (high is None or value < high):
            return [f"{index}:{low:g}-{'' if high is None else f'{high:g}'}"]
    return []


ATTRIBUTES: dict[str, Callable[[Firmographics], Iterable[str]]] = {
    "industry": lambda f: _text(f.industry),
    "country": lambda f: _text(f.country),
    "funding": lambda f: _text(f.funding),
    "maturity": lambda f: _text(f.maturity),
    "technologies": lambda f: [t.strip().lower() for t in f.technologies if t.strip()],
    "employees": lambda f: _band(f.employees, EMPLOYEE_BANDS),
    "annual_revenue": lambda f: _band(f.annual_revenue, REVENUE_BANDS),
    "customer_count": lambda f: _band(f.customer_count, CUSTOMER_BANDS),
}
