"""Recording what an account did: engagement, reach, activity, contacts and surges.

These functions only record facts in the state; stage and tier decisions are made from
those facts elsewhere (``rules`` and ``tiers``). Bot traffic never reaches them.

- **Engagement**: page views, ad clicks, chats, email clicks and replies, any inbound
  email, meetings and form fills. Ad impressions are reach only; outbound sends and opens
  are not engagement.
- **Activity** (``last_activity_at``, per channel): what the account itself did, i.e.
  engagement, email opens, third-party intent signals and NPS answers. Impressions and our
  own outbound emails are not its activity.
- **Contacts**: hashed addresses of the people seen; meeting attendees only when their
  address is on the account's domain (the others are usually our own people).
- **View-through visit**: a page view within ``view_through_window_days`` after an ad
  impression, with no ad click since that impression.
"""

from __future__ import annotations

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
from services.funnel.config import FunnelConfig
from services.funnel.state import (
    MAX_SURGE_TOPICS,
    AccountState,
    earliest,
    latest,
    sorted_by_key,
    with_contacts,
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
    """``state`` with the engagement, reach, activity and contacts of ``event`` recorded."""
    at = event.occurred_at
    update: dict[str, Any] = {"counters": state.counters.plus(**_increments(state, event, config))}
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
    update.update(_ad_and_page_times(state, event, config))
    contacts = with_contacts(state.contacts_seen, contact_emails(event, state.domain))
    if contacts is not state.contacts_seen:
        update["contacts_seen"] = contacts
    return state.model_copy(update=update)


def _ad_and_page_times(state: AccountState, event: Event, config: FunnelConfig) -> dict[str, Any]:
    at = event.occurred_at
    if event.type == "ad_impressed":
        return {"last_impression_at": latest(state.last_impression_at, at)}
    if event.type == "ad_clicked":
        return {"last_ad_click_at": latest(state.last_ad_click_at, at)}
    if isinstance(event, PageViewed) and is_high_value(event.url, config):
        return {"last_high_value_visit_at": latest(state.last_high_value_visit_at, at)}
    return {}


def _increments(state: AccountState, event: Event, config: FunnelConfig) -> dict[str, int]:
    if isinstance(event, PageViewed):
        return {
            "visits": 1,
            "high_value_visits": int(is_high_value(event.url, config)),
            "view_through_visits": int(_is_view_through(state, event, config)),
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
