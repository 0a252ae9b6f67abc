"""Our own website, as the tracking tag sees it: pages, referrers and page views."""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime

from services.simulate.plan import Plan, Visitor
from services.simulate.segment import DraftLog, page_call

SITE = "https://www.abm-stream.example"


@dataclass(frozen=True, slots=True)
class Page:
    path: str
    title: str
    weight: float = 1.0


PAGES = (
    Page("/", "ABM Stream - real-time account-based marketing", 3),
    Page("/product", "Product overview", 2),
    Page("/product/intent", "Intent and surge detection", 1.5),
    Page("/solutions/abm", "ABM programs that scale", 1.5),
    Page("/integrations/salesforce", "Salesforce integration"),
    Page("/customers", "Customer stories"),
    Page("/blog/what-is-account-based-marketing", "What is account-based marketing?", 2),
    Page("/blog/intent-data-101", "Intent data 101", 1.5),
    Page("/docs/getting-started", "Getting started"),
)
PRICING = Page("/pricing", "Pricing")
DEMO = Page("/demo", "Book a demo")
LANDING = Page("/solutions/abm", "ABM programs that scale")
FORM_PAGES = {
    "demo-request": DEMO,
    "ebook-abm-playbook": Page("/resources/abm-playbook", "The ABM playbook"),
    "webinar-intent-data": Page("/webinars/intent-data", "Webinar: intent data in practice"),
}
REFERRERS = (
    ("", 4), ("https://www.google.com/", 5), ("https://www.linkedin.com/", 2),
    ("https://www.g2.com/", 1), ("https://news.ycombinator.com/", 0.5),
)  # fmt: skip


def visit(
    log: DraftLog,
    plan: Plan,
    visitor: Visitor,
    at: datetime,
    page: Page,
    referrer: str = "",
    query: str = "",
) -> None:
    """One page view, carrying the account only if the tag knows it at that moment."""
    url = SITE + page.path + (f"?{query}" if query else "")
    who = visitor.who(at, plan.domain)
    log.add(page_call(at, who, url=url, path=page.path, title=page.title, referrer=referrer))


def pick_page(rng: random.Random, high_value_share: float) -> Page:
    """A page by popularity; ``high_value_share`` of the views go to pricing or demo."""
    if rng.random() < high_value_share:
        return rng.choice((PRICING, PRICING, DEMO))
    return rng.choices(PAGES, [p.weight for p in PAGES])[0]


def pick_referrer(rng: random.Random) -> str:
    return rng.choices([r for r, _ in REFERRERS], [w for _, w in REFERRERS])[0]
