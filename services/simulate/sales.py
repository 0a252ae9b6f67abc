"""Contact-level layers (identification, email, chat, meetings) and the deal itself
(CRM opportunity, subscription lifecycle, NPS) of one account's journey."""

from __future__ import annotations

import random
from datetime import datetime, timedelta
from typing import Any

from services.simulate.plan import Contact, Plan, between
from services.simulate.segment import DraftLog, Who, identify_call, track_call
from services.simulate.site import FORM_PAGES, visit
from services.simulate.timeline import CUSTOMER_OUTCOMES, OPPORTUNITY_OUTCOMES, Outcome

NURTURE_FORMS = ("ebook-abm-playbook", "webinar-intent-data")
SUBJECTS = (
    "Quick question about your ABM program", "Intent data for {name}",
    "Follow-up: pricing and next steps", "Your pilot: what we learned", "Agenda for Thursday",
)  # fmt: skip
LOSS_REASONS = ("no budget", "chose a competitor", "no decision")
RETAINED = frozenset({Outcome.WON, Outcome.RETENTION, Outcome.EXPANSION})


def write_contacts(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    for contact in plan.contacts:
        _identify(log, plan, contact, rng)
        end = _conversation_end(plan)
        for _ in range(_threads(plan.outcome, rng)):
            _email_thread(log, plan, contact, between(rng, contact.identified_at, end), rng)
    _chat(log, plan, rng)
    _meetings(log, plan, rng)


def _identify(log: DraftLog, plan: Plan, contact: Contact, rng: random.Random) -> None:
    """The champion identifies by a form fill in their browser (de-anonymising it);
    the rest of the committee arrives from the sales tools."""
    at = contact.identified_at
    traits = {"email": contact.email, "name": contact.name, "title": contact.title}
    browser = next((v for v in plan.visitors if v.contact == contact), None)
    if browser is None:
        log.add(identify_call(at, Who(user_id=contact.user_id), traits))
        return
    form = "demo-request" if plan.outcome in OPPORTUNITY_OUTCOMES else rng.choice(NURTURE_FORMS)
    visit(log, plan, browser, at - timedelta(minutes=rng.uniform(1, 5)), FORM_PAGES[form])
    who = Who(
        anonymous_id=browser.anonymous_id,
        user_id=contact.user_id,
        ip=browser.ip,
        user_agent=browser.user_agent,
    )
    log.add(identify_call(at, who, traits))
    submitted = at + timedelta(seconds=1)
    properties = {"form_id": form, "email": contact.email}
    log.add(
        track_call(submitted, browser.who(submitted, plan.domain), "Form Submitted", properties)
    )


def _threads(outcome: Outcome, rng: random.Random) -> int:
    if outcome is Outcome.ENGAGED:
        return rng.randint(1, 2)
    return rng.randint(2, 4) if outcome in CUSTOMER_OUTCOMES else rng.randint(2, 3)


def _conversation_end(plan: Plan) -> datetime:
    """Customers keep talking to us; a customer about to churn goes quiet after onboarding."""
    tl = plan.timeline
    if plan.outcome in RETAINED:
        return tl.start
    if plan.outcome is Outcome.CHURNED and tl.closed is not None:
        return tl.closed + timedelta(days=10)
    return tl.presale_end


def _email_thread(
    log: DraftLog, plan: Plan, contact: Contact, at: datetime, rng: random.Random
) -> None:
    """An outbound email, maybe opened and clicked, maybe answered (and answered back)."""
    subject = rng.choice(SUBJECTS).format(name=plan.account.name)
    who = contact.who(plan.domain)

    def email(event: str, moment: datetime, direction: str = "outbound") -> None:
        properties = {"direction": direction, "email": contact.email, "subject": subject}
        log.add(track_call(moment, who, event, properties))

    email("Email Sent", at)
    if rng.random() < 0.3:
        return
    opened = at + timedelta(minutes=rng.uniform(10, 1440))
    email("Email Opened", opened)
    if rng.random() < 0.35:
        email("Email Clicked", opened + timedelta(minutes=rng.uniform(1, 120)))
    if rng.random() < (0.3 if plan.outcome is Outcome.ENGAGED else 0.55):
        replied = opened + timedelta(hours=rng.uniform(1, 48))
        email("Email Replied", replied, "inbound")
        if rng.random() < 0.6:
            email("Email Replied", replied + timedelta(hours=rng.uniform(0.5, 24)))


def _chat(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """Some engaged accounts open the website chat; it names the contact once known."""
    engaged = plan.timeline.engaged
    if engaged is None or rng.random() > 0.35:
        return
    visitor = rng.choice(plan.visitors)
    at = between(rng, engaged, plan.timeline.presale_end)
    properties = {"conversation_id": f"conv_{rng.getrandbits(40):010x}"}
    if visitor.contact is not None and visitor.identified(at):
        properties["email"] = visitor.contact.email
    log.add(track_call(at, visitor.who(at, plan.domain), "Chat Started", properties))


def _meetings(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """Intro calls, discovery and solution reviews while selling, QBRs with customers."""
    tl = plan.timeline
    if not plan.contacts:
        return
    first = plan.contacts[0].identified_at
    if tl.opportunity is None:
        windows = [(first, tl.presale_end, int(rng.random() < 0.4), "Intro call")]
    else:
        windows = [
            (first, tl.opportunity, rng.randint(1, 2), "Discovery call"),
            (tl.opportunity, tl.presale_end, rng.randint(1, 3), "Solution review"),
        ]
    if plan.outcome in RETAINED and tl.closed is not None:
        qbr_from = tl.closed + timedelta(days=7)
        windows.append((qbr_from, tl.start, rng.randint(1, 2), "Quarterly business review"))
    for low, high, count, title in windows:
        for _ in range(count):
            _meeting(log, plan, between(rng, low, high), title, rng)


def _meeting(log: DraftLog, plan: Plan, at: datetime, title: str, rng: random.Random) -> None:
    present = [c for c in plan.contacts if c.identified_at <= at] or [plan.contacts[0]]
    attendees = rng.sample(present, rng.randint(1, min(4, len(present))))
    properties = {
        "attendees": [c.email for c in attendees],
        "duration_minutes": rng.choice((30, 45, 60)),
        "title": title,
    }
    log.add(track_call(at, attendees[0].who(plan.domain), "Meeting Held", properties))


def write_deal(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """The CRM opportunity, then the customer's subscription and survey answers."""
    tl = plan.timeline
    if tl.opportunity is None:
        return
    deal = {
        "opportunity_id": f"006{rng.getrandbits(40):010X}",
        "name": f"{plan.account.name} - new business",
    }
    amount = plan.acv

    def crm(event: str, at: datetime, stage: str, **extra: Any) -> None:
        properties = {**deal, "amount": amount, "stage": stage, **extra}
        log.add(track_call(at, plan.system, event, properties))

    crm("Opportunity Created", tl.opportunity, "discovery")
    updates = sorted(between(rng, tl.opportunity, tl.closed or tl.start) for _ in range(2))
    for stage, at in zip(("proposal", "negotiation"), updates[: rng.randint(1, 2)], strict=False):
        amount = int(round(amount * rng.uniform(0.9, 1.1), -2))
        crm("Opportunity Updated", at, stage)
    if tl.closed is not None and plan.outcome is Outcome.LOST:
        crm("Opportunity Lost", tl.closed, "closed_lost", reason=rng.choice(LOSS_REASONS))
    elif tl.closed is not None:
        crm("Opportunity Won", tl.closed, "closed_won")
    _subscription(log, plan, amount, rng)
    _nps(log, plan, rng)


def _subscription(log: DraftLog, plan: Plan, acv: int, rng: random.Random) -> None:
    tl = plan.timeline

    def lifecycle(event: str, at: datetime, amount: int, term_end: datetime) -> None:
        properties = {"amount": amount, "term_end": term_end.date().isoformat()}
        log.add(track_call(at, plan.system, event, properties))

    if tl.renewed is not None:
        term_end = tl.renewed + timedelta(days=365)
        lifecycle("Subscription Renewed", tl.renewed, _scaled(acv, 1.0, 1.08, rng), term_end)
        if tl.expanded is not None:
            uplift = _scaled(acv, 0.2, 0.6, rng)
            lifecycle("Subscription Expanded", tl.expanded, uplift, term_end)
    if tl.churned is not None:
        lifecycle("Subscription Churned", tl.churned, acv, tl.churned)


def _scaled(amount: int, low: float, high: float, rng: random.Random) -> int:
    return int(round(amount * rng.uniform(low, high), -2))


def _nps(log: DraftLog, plan: Plan, rng: random.Random) -> None:
    """Promoters among retained customers, detractors among those about to churn."""
    tl = plan.timeline
    if plan.outcome not in CUSTOMER_OUTCOMES or tl.closed is None or not plan.contacts:
        return
    if plan.outcome is Outcome.CHURNED:
        answers, low, high = [rng.randint(2, 6)], tl.closed + timedelta(days=10), tl.churned
    elif plan.outcome is Outcome.WON:
        answers = [rng.randint(7, 10)] if rng.random() < 0.5 else []
        low, high = tl.closed + timedelta(days=1), tl.start
    else:
        answers = rng.choices((7, 8, 9, 10), (1, 2, 3, 3), k=rng.randint(1, 2))
        low, high = tl.closed + timedelta(days=20), tl.start
    for score in answers:
        contact = rng.choice(plan.contacts)
        at = between(rng, low, high or tl.start)
        properties = {"score": score, "email": contact.email}
        log.add(track_call(at, contact.who(plan.domain), "NPS Submitted", properties))
