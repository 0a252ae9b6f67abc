"""Recording what an account did: engagement, reach, activity, contacts, scores and surges.

These functions only record facts in the state; stage and tier decisions are made from
those facts elsewhere (``rules`` and ``tiers``). Bot traffic never reaches them.

- **Engagement**: page views, ad clicks, chats, email clicks and replies, any inbound
  email, meetings and form fills. Ad impressions are reach only; outbound sends and opens
  are not engagement.
- **Activity** (``last_activity_at``, per channel): what the account itself did, i.e.
  engagement, email opens, third-party intent signals and NPS answers. Impressions and our
  own outbound emails are not its activity.
- **Contacts**: hashed addresses of the people seen; meeting attendees only when their
  address is on the account's domain (the others are usually our own people). A
  ``contact_identified`` gives its contact a role (see ``committee``); an engagement
  naming contacts marks them engaged that day.
- **View-through visit**: a page view within ``view_through_window_days`` after an ad
  impression, with no ad click since that impression; attributed to the campaign of the
  latest impression.
- **View-through conversion**: a form fill (here) or a new opportunity (``rules``) within
  ``view_through_window_days`` after a view-through visit, with no ad click since that
  visit; attributed to the visit's campaign. Per-campaign counts are kept for at most
  ``MAX_VIEW_THROUGH_CAMPAIGNS`` campaigns (later ones are only counted in ``counters``).
- **Scores**: each engagement is counted in its day's engagement bucket, each email and
  meeting in its day's relationship bucket, and the scores are refreshed (``scoring``).
"""

from __future__ import annotations

from datetime import date, datetime
from typing import Any
from urllib.parse import urlsplit

from schemas.events import (
    AdInteracted,
    ChatOccurred,
    ContactIdentified,
    EmailActivity,
    EmailDirection,
    Event,
    FormSubmitted,
    IntentSignalReceived,
    MeetingHeld,
    NpsSubmitted,
    PageViewed,
    SurgeEnded,
    SurgeStarted,
)
from services.funnel.committee import resolve_role, strongest_role, with_contacts
from services.funnel.config import UNKNOWN_ROLE, FunnelConfig
from services.funnel.engagement import count_key, with_activity
from services.funnel.relationship import Touch, with_touch
from services.funnel.scoring import refreshed_scores
from services.funnel.state import (
    MAX_SURGE_TOPICS,
    MAX_VIEW_THROUGH_CAMPAIGNS,
    AccountState,
    Contact,
    ViewThrough,
    contact_key,
    day_of,
    earliest,
    latest,
    sorted_by_key,
    view_through_counts,
    within,
)

ENGAGEMENT_TYPES = frozenset(
    {
        "page_viewed",
        "ad_clicked",
        "chat_started",
        "chat_message_sent",
        "email_clicked",
        "email_replied",
        "meeting_held",
        "form_submitted",
    }
)


def is_engagement(event: Event) -> bool:
    """Whether ``event`` is the account engaging with us (bots are filtered before)."""
    if isinstance(event, EmailActivity) and event.direction is EmailDirection.INBOUND:
        return True
    return event.type in ENGAGEMENT_TYPES


def activity_channel(event: Event) -> str | None:
    """The channel of the account's own activity that ``event`` is, if any."""
    if is_engagement(event) or event.type == "email_opened":
        return _ENGAGEMENT_CHANNELS.get(type(event))
    if isinstance(event, IntentSignalReceived):
        return "intent"
    if isinstance(event, NpsSubmitted):
        return "nps"
    return None


_ENGAGEMENT_CHANNELS: dict[type[Any], str] = {
    PageViewed: "web",
    AdInteracted: "ads",
    ChatOccurred: "chat",
    EmailActivity: "email",
    MeetingHeld: "meeting",
    FormSubmitted: "form",
}


def is_high_value(url: str, config: FunnelConfig) -> bool:
    """Whether the URL's path contains one of the high-value patterns (case-insensitive)."""
    try:
        path = urlsplit(url).path or url
    except ValueError:  # garbage from a browser, e.g. an unclosed IPv6 bracket
        path = url
    path = path.casefold()
    return any(pattern.casefold() in path for pattern in config.high_value_url_patterns)


def record_signal(state: AccountState, event: Event, config: FunnelConfig) -> AccountState:
    """``state`` with the engagement, reach, activity, contacts and scores of ``event``."""
    at = event.occurred_at
    high_value = view_through = False
    if isinstance(event, PageViewed):
        high_value = is_high_value(event.url, config)
        view_through = _is_view_through(state, event, config)
    conversion = isinstance(event, FormSubmitted) and is_view_through_conversion(state, at, config)
    increments = _increments(event, high_value, view_through)
    if conversion:
        increments["view_through_conversions"] = 1
    update: dict[str, Any] = {"counters": state.counters.plus(**increments)}
    channel = activity_channel(event)
    if channel is not None:
        update["last_activity_at"] = latest(state.last_activity_at, at)
        previous = state.last_activity_by_channel.get(channel)
        update["last_activity_by_channel"] = sorted_by_key(
            {**state.last_activity_by_channel, channel: latest(previous, at)}
        )
    if is_engagement(event):
        update["first_engaged_at"] = earliest(state.first_engaged_at, at)
        update["last_engaged_at"] = latest(state.last_engaged_at, at)
    update.update(_ad_and_page_times(state, event, high_value))
    update.update(_view_through(state, event, view_through, conversion))
    activity = activity_of(event, view_through=view_through, high_value=high_value)
    buckets, added = _contacts_and_buckets(state, event, activity, config)
    update.update(buckets)
    update["scores"] = refreshed_scores(state, update, config, added)
    return state.model_copy(update=update)


def _contacts_and_buckets(
    state: AccountState, event: Event, activity: str | None, config: FunnelConfig
) -> tuple[dict[str, Any], tuple[date, str] | None]:
    """The contacts' roles and engagement, and the score buckets, with ``event`` counted;
    and the day and key of its engagement bucket count, if any."""
    update: dict[str, Any] = {}
    added: tuple[date, str] | None = None
    emails = contact_emails(event, state.domain)
    contacts = _with_event_contacts(state.contacts, event, emails, config)
    if contacts is not state.contacts:
        update["contacts"] = contacts
    day, today = day_of(event.occurred_at), state.today
    if activity is not None:
        role = strongest_role(contacts, emails, config.engagement)
        update["engagement_days"] = with_activity(
            state.engagement_days, day, today, activity, role, config
        )
        added = (day, count_key(activity, role))
    touch = touch_of(event, state.domain)
    if touch is not None:
        update["relationship_days"] = with_touch(state.relationship_days, day, today, touch, config)
    return update, added


def _with_event_contacts(
    contacts: dict[str, Contact], event: Event, emails: list[str], config: FunnelConfig
) -> dict[str, Contact]:
    if not emails:
        return contacts
    role: str | None = None
    if isinstance(event, ContactIdentified):
        resolved = resolve_role(event.role, event.title, config.engagement)
        role = None if resolved == UNKNOWN_ROLE else resolved  # never forget a known role
    engaged_on = day_of(event.occurred_at) if _engages_its_contacts(event) else None
    return with_contacts(contacts, emails, role=role, engaged_on=engaged_on)


def _engages_its_contacts(event: Event) -> bool:
    """Engagement by the contacts the event names (our own reply to them is not theirs)."""
    if isinstance(event, EmailActivity) and event.type == "email_replied":
        return event.direction is EmailDirection.INBOUND
    return is_engagement(event)


def activity_of(event: Event, *, view_through: bool, high_value: bool) -> str | None:
    """The engagement score's activity that ``event`` is, if any (see ``engagement``);
    for a page view, whether it is a view-through visit and a high-value page."""
    if isinstance(event, PageViewed):
        if high_value:
            return "high_value_page_view"
        return "view_through_visit" if view_through else "page_view"
    if isinstance(event, EmailActivity):
        inbound = event.direction is EmailDirection.INBOUND
        if event.type == "email_replied":
            return "email_reply" if inbound else None  # an outbound reply is ours
        if event.type == "email_clicked":
            return "email_click"
        return "email_inbound" if inbound else None
    return _ACTIVITIES.get(event.type)


_ACTIVITIES = {
    "ad_clicked": "ad_click",
    "chat_started": "chat",
    "meeting_held": "meeting",
    "form_submitted": "form",
}


def touch_of(event: Event, domain: str) -> Touch | None:
    """What ``event`` adds to the relationship buckets: emails written and meetings."""
    if isinstance(event, MeetingHeld):
        keys = tuple(contact_key(email) for email in contact_emails(event, domain))
        return Touch(meetings=1, contacts=keys)
    if not isinstance(event, EmailActivity) or event.type not in ("email_sent", "email_replied"):
        return None
    if event.direction is EmailDirection.OUTBOUND:
        return Touch(sent=1)
    keys = (contact_key(event.contact_email),) if event.contact_email else ()
    return Touch(received=1, replies=int(event.type == "email_replied"), contacts=keys)


def is_view_through_conversion(state: AccountState, at: datetime, config: FunnelConfig) -> bool:
    """Whether a conversion at ``at`` follows a view-through visit (see the docstring)."""
    visit = state.last_view_through_at
    if visit is None or visit > at:
        return False
    if not within(visit, at, config.view_through_window_days):
        return False
    click = state.last_ad_click_at
    return click is None or click < visit


def record_view_through_conversion(
    state: AccountState, at: datetime, config: FunnelConfig
) -> AccountState:
    """``state`` with a conversion at ``at`` counted, if it is a view-through conversion."""
    if not is_view_through_conversion(state, at, config):
        return state
    update = _attributed(state, state.last_view_through_campaign, visit=False)
    update["counters"] = state.counters.plus(view_through_conversions=1)
    return state.model_copy(update=update)


def _view_through(
    state: AccountState, event: Event, visit: bool, conversion: bool
) -> dict[str, Any]:
    """The view-through fields ``event`` changes: last impression, visit, campaign counts."""
    at = event.occurred_at
    if isinstance(event, AdInteracted) and event.type == "ad_impressed":
        latest_one = state.last_impression_at is None or at >= state.last_impression_at
        return {"last_impression_campaign": event.campaign_id} if latest_one else {}
    if conversion:
        return _attributed(state, state.last_view_through_campaign, visit=False)
    if not visit:
        return {}
    campaign = state.last_impression_campaign
    update = _attributed(state, campaign, visit=True)
    if state.last_view_through_at is None or at >= state.last_view_through_at:
        update.update(last_view_through_at=at, last_view_through_campaign=campaign)
    return update


def _attributed(state: AccountState, campaign: str | None, *, visit: bool) -> dict[str, Any]:
    """The per-campaign counts with a view-through visit (or else conversion) added."""
    if campaign is None:
        return {}
    counts = _campaign_counts(state, campaign, visit, not visit)
    return {} if counts is None else {"view_through": counts}


def _campaign_counts(
    state: AccountState, campaign: str, visit: bool, conversion: bool
) -> dict[str, ViewThrough] | None:
    current = state.view_through.get(campaign)
    if current is None:
        if len(state.view_through) >= MAX_VIEW_THROUGH_CAMPAIGNS:
            return None
        current = view_through_counts(0, 0)
    counted = view_through_counts(
        current["visits"] + int(visit), current["conversions"] + int(conversion)
    )
    return sorted_by_key({**state.view_through, campaign: counted})


def _ad_and_page_times(state: AccountState, event: Event, high_value: bool) -> dict[str, Any]:
    at = event.occurred_at
    if event.type == "ad_impressed":
        return {"last_impression_at": latest(state.last_impression_at, at)}
    if event.type == "ad_clicked":
        return {"last_ad_click_at": latest(state.last_ad_click_at, at)}
    if high_value:
        return {"last_high_value_visit_at": latest(state.last_high_value_visit_at, at)}
    return {}


def _increments(event: Event, high_value: bool, view_through: bool) -> dict[str, int]:
    if isinstance(event, PageViewed):
        return {
            "visits": 1,
            "high_value_visits": int(high_value),
            "view_through_visits": int(view_through),
        }
    if isinstance(event, EmailActivity):
        if is_engagement(event):
            return {"emails": 1}
        return {"emails_sent": int(event.type == "email_sent")}
    counter = _COUNTED_TYPES.get(event.type)
    return {counter: 1} if counter is not None else {}


_COUNTED_TYPES = {
    "ad_impressed": "ad_impressions",
    "ad_clicked": "ad_clicks",
    "chat_started": "chats",
    "meeting_held": "meetings",
    "form_submitted": "forms",
}


def _is_view_through(state: AccountState, event: PageViewed, config: FunnelConfig) -> bool:
    impression = state.last_impression_at
    if impression is None or impression > event.occurred_at:
        return False
    if not within(impression, event.occurred_at, config.view_through_window_days):
        return False
    click = state.last_ad_click_at
    return click is None or click < impression


def contact_emails(event: Event, domain: str) -> list[str]:
    """The contacts' addresses that ``event`` names (meeting attendees of ``domain`` only)."""
    if isinstance(event, MeetingHeld):
        return [a for a in event.attendees if _on_domain(a, domain)]
    if isinstance(event, ContactIdentified):
        return [event.contact_email]
    if isinstance(event, ChatOccurred | EmailActivity | FormSubmitted | NpsSubmitted):
        return [event.contact_email] if event.contact_email else []
    return []


def _on_domain(email: str, domain: str) -> bool:
    host = email.rpartition("@")[2].casefold()
    return host == domain or host.endswith(f".{domain}")


def record_surge(state: AccountState, event: SurgeStarted | SurgeEnded) -> AccountState:
    """``state`` with the surge started or ended on ``event.topic``."""
    topics = dict(state.surge_topics)
    if isinstance(event, SurgeEnded):
        topics.pop(event.topic, None)
    elif event.topic in topics or len(topics) < MAX_SURGE_TOPICS:
        topics[event.topic] = earliest(topics.get(event.topic), event.occurred_at)
    return state.model_copy(
        update={
            "surge_topics": sorted_by_key(topics),
            "last_surge_at": latest(state.last_surge_at, event.occurred_at),
        }
    )
