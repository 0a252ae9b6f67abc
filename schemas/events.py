"""Every event family of the domain, as one discriminated union on ``type``.

Inbound facts come from ingest (or the API's write endpoints); derived facts are emitted
by intent (surges) and funnel (stage and tier changes). Names are past-tense facts.
"""

from __future__ import annotations

from datetime import date
from enum import StrEnum
from typing import Annotated, Literal

from pydantic import (
    EmailStr,
    Field,
    NonNegativeFloat,
    TypeAdapter,
    field_validator,
    model_validator,
)

from schemas.envelope import Envelope, LongText, Model, ShortText

# --- inbound: engagement and reach -------------------------------------------------------


class PageViewed(Envelope):
    type: Literal["page_viewed"] = "page_viewed"
    url: LongText
    referrer: LongText | None = None
    title: ShortText | None = None


class AdChannel(StrEnum):
    DISPLAY = "display"
    EMAIL_SIGNATURE = "email_signature"


class AdInteracted(Envelope):
    """An ad impression (reach) or click (engagement)."""

    type: Literal["ad_impressed", "ad_clicked"]
    campaign_id: ShortText
    channel: AdChannel = AdChannel.DISPLAY


class ChatOccurred(Envelope):
    type: Literal["chat_started", "chat_message_sent"]
    conversation_id: ShortText | None = None
    contact_email: EmailStr | None = None


class EmailDirection(StrEnum):
    INBOUND = "inbound"
    OUTBOUND = "outbound"


class EmailActivity(Envelope):
    type: Literal["email_sent", "email_opened", "email_clicked", "email_replied"]
    direction: EmailDirection = EmailDirection.OUTBOUND
    contact_email: EmailStr | None = None
    message_id: ShortText | None = None


class MeetingHeld(Envelope):
    type: Literal["meeting_held"] = "meeting_held"
    attendees: list[EmailStr] = Field(default_factory=list, max_length=200)
    duration_minutes: NonNegativeFloat | None = None


class FormSubmitted(Envelope):
    type: Literal["form_submitted"] = "form_submitted"
    form_id: ShortText | None = None
    contact_email: EmailStr | None = None


class ContactIdentified(Envelope):
    """An anonymous visitor or a user id is tied to a contact (and so to an account)."""

    type: Literal["contact_identified"] = "contact_identified"
    contact_email: EmailStr
    user_id: ShortText | None = None
    title: ShortText | None = None
    role: ShortText | None = None


# --- inbound: firmographics, intent, CRM and lifecycle -----------------------------------


class AccountUpserted(Envelope):
    """Firmographics of an account; the funnel re-scores fit on each one."""

    type: Literal["account_upserted"] = "account_upserted"
    name: ShortText | None = None
    industry: ShortText | None = None
    country: ShortText | None = None
    employees: int | None = Field(default=None, ge=0)
    annual_revenue: NonNegativeFloat | None = None
    technologies: list[ShortText] = Field(default_factory=list, max_length=200)
    funding: ShortText | None = None
    customer_count: int | None = Field(default=None, ge=0)
    maturity: ShortText | None = Field(
        default=None,
        description="Lower-cased; typically startup, growth, established or enterprise.",
    )
    owner: ShortText | None = None
    target: bool | None = Field(default=None, description="Explicit targeting; None = by fit.")

    @field_validator("maturity")
    @classmethod
    def _lower_case_maturity(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip().lower() or None

    @model_validator(mode="after")
    def _names_its_account(self) -> AccountUpserted:
        if self.account is None:
            raise ValueError("account_upserted needs the account's domain in `account`")
        return self


class IntentSignalReceived(Envelope):
    """Third-party intent: topic-tagged content consumption seen by a data provider."""

    type: Literal["intent_signal_received"] = "intent_signal_received"
    topic: ShortText
    score: float | None = Field(default=None, ge=0, le=100)
    count: int | None = Field(default=None, ge=0)
    provider: ShortText | None = None


class OpportunityChanged(Envelope):
    type: Literal[
        "opportunity_created", "opportunity_updated", "opportunity_won", "opportunity_lost"
    ]
    opportunity_id: ShortText
    amount: NonNegativeFloat | None = None
    stage: ShortText | None = None


class SubscriptionChanged(Envelope):
    type: Literal["subscription_renewed", "subscription_expanded", "subscription_churned"]
    amount: NonNegativeFloat | None = None
    term_end: date | None = None


class NpsSubmitted(Envelope):
    type: Literal["nps_submitted"] = "nps_submitted"
    score: int = Field(ge=0, le=10)
    contact_email: EmailStr | None = None


class CampaignSpent(Envelope):
    type: Literal["campaign_spent"] = "campaign_spent"
    channel: ShortText
    amount: NonNegativeFloat
    period_start: date | None = None
    period_end: date | None = None
    campaign_id: ShortText | None = None


# --- derived: emitted by intent and funnel -----------------------------------------------


class _SurgeTransition(Envelope):
    """What a surge event explains: the topic, the score, against which baseline, why."""

    topic: ShortText
    score: float = Field(ge=0, le=100)
    baseline: float
    observed: float
    detector_version: ShortText
    trigger_event_ids: list[str] = Field(default_factory=list)
    competitor: bool | None = Field(
        default=None,
        description="The topic is a competitor topic: for a customer, a churn-risk signal.",
    )


class SurgeStarted(_SurgeTransition):
    type: Literal["surge_started"] = "surge_started"


class SurgeEnded(_SurgeTransition):
    type: Literal["surge_ended"] = "surge_ended"


class Stage(StrEnum):
    TARGET = "target"
    ENGAGED = "engaged"
    OPPORTUNITY = "opportunity"
    WON = "won"
    RETENTION = "retention"
    EXPANSION = "expansion"

    @property
    def rank(self) -> int:
        return STAGE_ORDER.index(self)


STAGE_ORDER: tuple[Stage, ...] = tuple(Stage)


class StageChanged(Envelope):
    type: Literal["stage_changed"] = "stage_changed"
    from_stage: Stage | None = None
    to_stage: Stage | None = None
    rule: ShortText
    config_version: ShortText
    cause_event_ids: list[str] = Field(default_factory=list)


class TierChanged(Envelope):
    type: Literal["tier_changed"] = "tier_changed"
    from_tier: int | None = Field(default=None, ge=1, le=3)
    to_tier: int | None = Field(default=None, ge=1, le=3)
    rule: ShortText
    config_version: ShortText
    cause_event_ids: list[str] = Field(default_factory=list)


class ClockTicked(Envelope):
    """Time passed on one partition of the events topic, with no event of its own.

    Produced periodically by the funnel (event time = wall clock minus an allowed
    lateness) and consumed like any event, so that windows expire without new events
    (an engagement lapsing, a tier losing its recent intent) and a replay of the topic
    expires them at exactly the same points.
    """

    type: Literal["clock_ticked"] = "clock_ticked"
    partition: int = Field(ge=0)


InboundEvent = Annotated[
    PageViewed
    | AdInteracted
    | ChatOccurred
    | EmailActivity
    | MeetingHeld
    | FormSubmitted
    | ContactIdentified
    | AccountUpserted
    | IntentSignalReceived
    | OpportunityChanged
    | SubscriptionChanged
    | NpsSubmitted
    | CampaignSpent,
    Field(discriminator="type"),
]

DerivedEvent = Annotated[
    SurgeStarted | SurgeEnded | StageChanged | TierChanged | ClockTicked,
    Field(discriminator="type"),
]

Event = Annotated[InboundEvent | DerivedEvent, Field(discriminator="type")]

EVENT_ADAPTER: TypeAdapter[Event] = TypeAdapter(Event)
INBOUND_ADAPTER: TypeAdapter[InboundEvent] = TypeAdapter(InboundEvent)


class DeadLetter(Model):
    """What the dead-letter topic carries besides the original bytes (also in headers)."""

    reason: LongText
    source: ShortText
    original_topic: ShortText | None = None
    original_partition: int | None = None
    original_offset: int | None = None


def decode_event(raw: bytes) -> Event:
    """Decode one event from the wire; raises ``pydantic.ValidationError`` on bad input."""
    return EVENT_ADAPTER.validate_json(raw)


def encode_event(event: Envelope) -> bytes:
    return event.model_dump_json(exclude_none=True).encode()
