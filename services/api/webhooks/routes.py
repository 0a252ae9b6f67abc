"""Webhook subscriptions (write scope) and their delivery log."""

from __future__ import annotations

import secrets
import uuid
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from fastapi import APIRouter, Path, Query, Request, Response
from pydantic import AnyHttpUrl, BaseModel, Field
from sqlalchemy import insert, update

from services.api.errors import BadRequest, NotFound
from services.api.webhooks import store
from services.api.webhooks.targets import RefusedTarget, check_subscription
from services.kit.tables import webhook_subscriptions

router = APIRouter(prefix="/webhooks")

ChangeType = Literal["stage_changed", "tier_changed", "surge_started", "surge_ended"]
SubscriptionId = Annotated[str, Path(min_length=32, max_length=32, pattern="^[0-9a-f]{32}$")]


class SubscriptionRequest(BaseModel):
    url: AnyHttpUrl
    event_types: list[ChangeType] = Field(min_length=1)


class Subscription(BaseModel):
    id: str
    url: str
    event_types: list[str]
    created_at: datetime


class CreatedSubscription(Subscription):
    secret: str = Field(description="HMAC-SHA256 signing secret; shown once")


class Delivery(BaseModel):
    id: int
    event_id: str
    event_type: str
    status: Literal["pending", "delivered", "failed"]
    attempts: int
    next_attempt_at: datetime
    last_status_code: int | None
    last_error: str | None
    delivered_at: datetime | None
    created_at: datetime


@router.post("", status_code=201, response_model=CreatedSubscription, summary="Subscribe")
async def subscribe(request: Request, body: SubscriptionRequest) -> CreatedSubscription:
    settings = request.state.api.settings
    if not settings.webhooks_reach_private_targets:
        try:
            await check_subscription(str(body.url), settings.api_webhook_timeout_s)
        except RefusedTarget as refusal:
            raise BadRequest(str(refusal), field="url") from None
    row: dict[str, Any] = {
        "id": uuid.uuid4().hex,
        "url": str(body.url),
        "event_types": " ".join(sorted(set(body.event_types))),
        "secret": secrets.token_hex(32),
        "created_at": datetime.now(UTC),
    }
    async with request.state.api.sessions() as session, session.begin():
        await session.execute(insert(webhook_subscriptions).values(**row))
    return CreatedSubscription(**{**row, "event_types": row["event_types"].split()})


@router.get("", response_model=list[Subscription], summary="Active subscriptions")
async def list_subscriptions(request: Request) -> list[Subscription]:
    async with request.state.api.sessions() as session:
        rows = await store.active_subscriptions(session)
    return [Subscription(**{**r, "event_types": r["event_types"].split()}) for r in rows]


@router.delete(
    "/{subscription_id}", status_code=204, response_class=Response, summary="Unsubscribe"
)
async def unsubscribe(request: Request, subscription_id: SubscriptionId) -> Response:
    table = webhook_subscriptions
    async with request.state.api.sessions() as session, session.begin():
        result = await session.execute(
            update(table)
            .where(table.c.id == subscription_id)
            .where(table.c.revoked_at.is_(None))
            .values(revoked_at=datetime.now(UTC))
        )
    if not result.rowcount:
        raise NotFound("no active subscription with that id")
    return Response(status_code=204)


@router.get("/{subscription_id}/deliveries", response_model=list[Delivery], summary="Delivery log")
async def deliveries(
    request: Request,
    subscription_id: SubscriptionId,
    limit: Annotated[int, Query(ge=1, le=500)] = 50,
) -> list[Delivery]:
    async with request.state.api.sessions() as session:
        rows = await store.deliveries_of(session, subscription_id, limit)
    return [Delivery(**row) for row in rows]
