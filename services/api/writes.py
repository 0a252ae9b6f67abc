"""Writes for the tools that own the data: accounts, contacts, opportunities.

They become events on the same topic as ingest's, so one path changes state. The answer
is 202 once the broker acknowledged the event; the state follows within a second. An
``Idempotency-Key`` header becomes the event id, so a retried write applies once.
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Header, Request
from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    ConfigDict,
    EmailStr,
    Field,
    ValidationError,
)

from schemas.envelope import Domain, Envelope, normalize_domain
from schemas.events import INBOUND_ADAPTER
from services.api.accounts import DomainPath
from services.api.errors import BadRequest, ServiceUnavailable
from services.kit.publish import BrokerUnavailable, produce_events

router = APIRouter()

IdempotencyKey = Annotated[str | None, Header(max_length=128, description="Becomes the event id")]


def _expressible_in_utc(moment: datetime) -> datetime:
    """Year 1 at +01:00 has no UTC time: the consumers could not store the event."""
    try:
        moment.astimezone(UTC)
    except OverflowError:
        raise ValueError("outside the years 1 to 9999 in UTC") from None
    return moment


class _Write(BaseModel):
    model_config = ConfigDict(extra="forbid")
    occurred_at: Annotated[AwareDatetime, AfterValidator(_expressible_in_utc)] | None = Field(
        default=None, description="Default: now"
    )


class AccountWrite(_Write):
    name: str | None = Field(default=None, max_length=256)
    industry: str | None = Field(default=None, max_length=256)
    country: str | None = Field(default=None, max_length=256)
    employees: int | None = Field(default=None, ge=0)
    annual_revenue: float | None = Field(default=None, ge=0)
    technologies: list[Annotated[str, Field(max_length=256)]] = Field(
        default_factory=list, max_length=200
    )
    funding: str | None = Field(default=None, max_length=256)
    customer_count: int | None = Field(default=None, ge=0)
    owner: str | None = Field(default=None, max_length=256)
    target: bool | None = Field(default=None, description="Explicit targeting; null: by fit")


class ContactWrite(_Write):
    account: Domain
    email: EmailStr
    title: str | None = Field(default=None, max_length=256)
    role: str | None = Field(default=None, max_length=256)


class OpportunityWrite(_Write):
    account: Domain
    opportunity_id: str = Field(min_length=1, max_length=256)
    status: Literal["created", "updated", "won", "lost"]
    amount: float | None = Field(default=None, ge=0)
    stage: str | None = Field(default=None, max_length=256)


class Accepted(BaseModel):
    event_id: str
    type: str


@router.put(
    "/accounts/{domain}", status_code=202, response_model=Accepted, summary="Upsert an account"
)
async def put_account(
    request: Request,
    domain: DomainPath,
    body: AccountWrite,
    idempotency_key: IdempotencyKey = None,
) -> Accepted:
    fields = body.model_dump(exclude={"occurred_at"}, exclude_none=True)
    return await _publish(
        request, "account_upserted", _account(domain), body, fields, idempotency_key
    )


@router.post("/contacts", status_code=202, response_model=Accepted, summary="Upsert a contact")
async def post_contact(
    request: Request, body: ContactWrite, idempotency_key: IdempotencyKey = None
) -> Accepted:
    fields = {"contact_email": body.email, "title": body.title, "role": body.role}
    return await _publish(
        request, "contact_identified", body.account, body, fields, idempotency_key
    )


@router.post(
    "/opportunities", status_code=202, response_model=Accepted, summary="Record an opportunity"
)
async def post_opportunity(
    request: Request, body: OpportunityWrite, idempotency_key: IdempotencyKey = None
) -> Accepted:
    fields = {"opportunity_id": body.opportunity_id, "amount": body.amount, "stage": body.stage}
    kind = f"opportunity_{body.status}"
    return await _publish(request, kind, body.account, body, fields, idempotency_key)


async def _publish(
    request: Request, kind: str, account: str, body: _Write, fields: dict[str, Any], key: str | None
) -> Accepted:
    now = datetime.now(UTC)
    document = {
        **fields,
        "type": kind,
        "event_id": key or uuid.uuid4().hex,
        "account": account,
        "occurred_at": body.occurred_at or now,
        "received_at": now,
        "source": "api",
        # the writer named the account itself: the strongest evidence there is
        "account_provenance": "api",
        "account_confidence": 1.0,
    }
    try:
        event: Envelope = INBOUND_ADAPTER.validate_python(document)
    except ValidationError as error:
        first = error.errors()[0]
        raise BadRequest(
            str(first.get("msg")), field=".".join(map(str, first.get("loc", ())))
        ) from None
    state = request.state.api
    try:
        await produce_events(
            await state.producer.get(), [event], state.settings.api_write_timeout_s
        )
    except BrokerUnavailable:
        raise ServiceUnavailable(
            "the broker did not acknowledge; retry", headers={"Retry-After": "5"}
        ) from None
    return Accepted(event_id=event.event_id, type=kind)


def _account(domain: str) -> str:
    try:
        return normalize_domain(domain)
    except ValueError as error:
        raise BadRequest(str(error), field="domain") from None
