"""Bearer-token authentication with scopes (read, write, admin)."""

from __future__ import annotations

import time
from typing import Annotated

from fastapi import Depends, Request, Response
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

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
        response: Response,
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
        response.headers.update(decision.headers())
        return scopes

    return Depends(dependency)
