"""Bearer-token authentication with scopes (read, write, admin)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.api.errors import Forbidden, TooManyRequests, Unauthorized
from services.api.ratelimit import RateLimiter
from services.kit.cache import TtlCache
from services.kit.credentials import hash_secret, scopes_for_token

_bearer = HTTPBearer(auto_error=False, description="API token")


class Tokens:
    """Token -> scopes, cached briefly so polling does not read the table each time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], ttl_s: float) -> None:
        self._sessions = sessions
        self._cache: TtlCache[frozenset[str] | None] = TtlCache(self._lookup, ttl_s)

    async def scopes(self, token: str) -> frozenset[str] | None:
        return await self._cache.get(token)

    async def _lookup(self, token: str) -> frozenset[str] | None:
        async with self._sessions() as session:
            return await scopes_for_token(session, token)


def require(scope: str) -> object:
    """Authenticate the bearer token, check its scope, then its rate limit."""

    async def dependency(
        request: Request,
        credentials: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    ) -> frozenset[str]:
        if credentials is None:
            raise Unauthorized("send Authorization: Bearer <token>")
        tokens: Tokens = request.state.api.tokens
        scopes = await tokens.scopes(credentials.credentials)
        if scopes is None:
            raise Unauthorized("unknown or revoked token")
        if scope not in scopes:
            raise Forbidden(f"this token lacks the {scope!r} scope")
        limiter: RateLimiter = request.state.api.limiter
        decision = limiter.check(hash_secret(credentials.credentials), time.monotonic())
        if not decision.allowed:
            raise TooManyRequests(
                "rate limit exceeded; see Retry-After", headers=decision.headers()
            )
        # Not on the dependency's Response: FastAPI drops those headers when a route returns
        # its own (a 304, a 204, a stream); RateLimitHeaders adds them to every answer.
        request.state.rate_limit_headers = decision.headers()
        return scopes

    return Depends(dependency)


class RateLimitHeaders:
    """Adds the RateLimit-* headers ``require`` decided to the response, whatever the route
    returned or raised (plain ASGI, nothing buffered)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def with_limits(message: Message) -> None:
            limits: dict[str, str] | None = scope.get("state", {}).get("rate_limit_headers")
            if message["type"] == "http.response.start" and limits:
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                added = [(k.lower().encode(), v.encode()) for k, v in limits.items()]
                message = {
                    **message,
                    "headers": headers + [h for h in added if h[0] not in present],
                }
            await send(message)

        await self.app(scope, receive, with_limits)
