"""The webhook dispatcher: a background task of the API process.

Each round fans new changes out into deliveries, claims the due ones with a lease, posts
them signed, and records each outcome: delivered, retried later with exponential
back-off, or failed after the last attempt. At-least-once: a receiver de-duplicates on
``ABM-Event-Id``.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from collections.abc import Callable
from typing import Any

import httpx
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.api.settings import ApiSettings
from services.api.webhooks import store
from services.api.webhooks.signing import retry_delay_s, signature
from services.api.webhooks.targets import PinnedRequest, RefusedTarget, pin_delivery
from services.kit.stopping import wait_any

log = logging.getLogger(__name__)

CONCURRENCY = 16


class Dispatcher:
    def __init__(
        self,
        settings: ApiSettings,
        sessions: async_sessionmaker[AsyncSession],
        arrivals: Callable[[], asyncio.Event] | None = None,
    ) -> None:
        """``arrivals``: an event set when new changes are in the log (``ChangeTail.ticket``):
        a round then starts at once, not at the end of ``api_webhook_poll_s``."""
        self._settings = settings
        self._sessions = sessions
        self._arrivals = arrivals

    async def run(self, stop: asyncio.Event) -> None:
        async with httpx.AsyncClient(timeout=self._settings.api_webhook_timeout_s) as client:
            while not stop.is_set():
                # Taken before the round: changes arriving during it start the next one.
                wake = [stop] if self._arrivals is None else [stop, self._arrivals()]
                try:
                    busy = await self.round(client)
                except Exception:  # a bad round must not end deliveries for good
                    log.exception("webhook round failed")
                    busy = False
                if not busy:
                    await wait_any(wake, self._settings.api_webhook_poll_s)

    async def round(self, client: httpx.AsyncClient) -> bool:
        async with self._sessions() as session, session.begin():
            fanned = await store.fan_out(session, 500)
        async with self._sessions() as session, session.begin():
            due = await store.claim_due(session, self._settings.api_webhook_timeout_s * 3, 100)
        if due:
            subscriptions = await self._subscriptions()
            limiter = asyncio.Semaphore(CONCURRENCY)
            outcomes = await asyncio.gather(
                *(self._send(client, limiter, d, subscriptions) for d in due)
            )
            await self._record(due, outcomes)
        return bool(fanned or due)

    async def _subscriptions(self) -> dict[str, dict[str, Any]]:
        async with self._sessions() as session:
            return {s["id"]: s for s in await store.active_subscriptions(session)}

    async def _send(
        self,
        client: httpx.AsyncClient,
        limiter: asyncio.Semaphore,
        delivery: dict[str, Any],
        subscriptions: dict[str, dict[str, Any]],
    ) -> store.Outcome:
        subscription = subscriptions.get(delivery["subscription_id"])
        if subscription is None:
            return store.Outcome(delivery["id"], None, "subscription revoked")
        body = json.dumps(delivery["payload"], separators=(",", ":"), sort_keys=True).encode()
        stamp = int(time.time())
        headers = {
            "Content-Type": "application/json",
            "ABM-Event-Id": delivery["event_id"],
            "ABM-Event-Type": delivery["event_type"],
            "ABM-Webhook-Id": str(delivery["id"]),
            "ABM-Timestamp": str(stamp),
            "ABM-Signature": signature(subscription["secret"], stamp, body),
        }
        async with limiter:
            try:
                target = await self._target(subscription["url"])
            except RefusedTarget as refusal:
                log.warning(
                    "webhook delivery %s to subscription %s refused (address %s): %s",
                    delivery["id"],
                    subscription["id"],
                    refusal.address,
                    refusal,
                )
                return store.Outcome(delivery["id"], None, f"refused: {refusal}")
            try:
                response = await client.post(
                    target.url,
                    content=body,
                    headers={**headers, **target.headers},
                    extensions=target.extensions,
                )
            except httpx.HTTPError as error:
                return store.Outcome(delivery["id"], None, type(error).__name__)
        return store.Outcome(delivery["id"], response.status_code, None)

    async def _target(self, url: str) -> PinnedRequest:
        """Where to send: checked again now, as the name may point elsewhere since it was
        subscribed, and pinned to the address checked."""
        if self._settings.webhooks_reach_private_targets:
            return PinnedRequest(httpx.URL(url), {}, {})
        return await pin_delivery(url, self._settings.api_webhook_timeout_s)

    async def _record(self, due: list[dict[str, Any]], outcomes: list[store.Outcome]) -> None:
        settings = self._settings
        async with self._sessions() as session, session.begin():
            for delivery, outcome in zip(due, outcomes, strict=True):
                attempts = delivery["attempts"] + 1
                gave_up = (
                    attempts >= settings.api_webhook_max_attempts
                    or outcome.error == "subscription revoked"
                )
                retry = (
                    None
                    if gave_up
                    else retry_delay_s(
                        attempts, settings.api_webhook_backoff_s, settings.api_webhook_max_backoff_s
                    )
                )
                await store.record_outcome(session, outcome, attempts, retry)
