"""`GET /v1/accounts/{domain}` served from memory when the account is cached.

Plain ASGI in front of routing: a poll answered from the cache pays neither FastAPI's
dependency resolution nor the database. It applies the route's own checks first: the
bearer token (the same cached lookup), the ``read`` scope, the per-token rate limit.
Anything it is not sure to answer exactly as the route would (no or bad token, a domain
the route would reject, a query string, the cache not listening) goes to the route
untouched, which then answers, errors included, in its usual way.

On a miss the route renders the detail and this layer keeps the response (see
``DetailCache`` for why a store may be refused). A revalidation that misses asks the
route for the full body, keeps it and answers 304 itself, so the next one is a hit.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

from fastapi.security.utils import get_authorization_scheme_param
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from schemas.envelope import normalize_domain
from services.api.accounts import DOMAIN_PATTERN
from services.api.detail_cache import DetailCache, Rendered
from services.api.errors import TooManyRequests, problem
from services.api.etag import matches
from services.kit.credentials import hash_secret

PREFIX = "/v1/accounts/"
MAX_IF_NONE_MATCH = 1000  # the route's own limit on the header (longer: the route says 422)
_DOMAIN = re.compile(DOMAIN_PATTERN)
_NO_CACHE = (b"cache-control", b"no-cache")


@dataclass(frozen=True, slots=True)
class _Route:
    """Stands in for the matched route in ``scope`` (latency is labelled by its path)."""

    path: str = "/v1/accounts/{domain}"


_ROUTE = _Route()


class AccountDetailFastPath:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        domain = _cacheable_domain(scope)
        api = scope.get("state", {}).get("api") if domain else None
        cache: DetailCache | None = getattr(api, "details", None)
        if domain is None or api is None or cache is None or not cache.active:
            await self.app(scope, receive, send)
            return
        headers = dict(reversed(scope["headers"]))  # the first of repeated headers, as Starlette
        if_none_match = headers.get(b"if-none-match", b"").decode("latin-1") or None
        token = _bearer(headers.get(b"authorization"))
        if (
            token is None
            or (if_none_match is not None and len(if_none_match) > MAX_IF_NONE_MATCH)
            or "read" not in (await api.tokens.scopes(token) or ())
        ):
            await self.app(scope, receive, send)  # the route explains the 401/403/422
            return
        cached = cache.get(domain)
        if cached is None:
            await self._miss(scope, receive, send, cache, domain, if_none_match)
            return
        scope["route"] = _ROUTE
        decision = api.limiter.check(hash_secret(token), time.monotonic())
        limits = [(k.lower().encode(), v.encode()) for k, v in decision.headers().items()]
        if not decision.allowed:
            refusal = TooManyRequests("rate limit exceeded; see Retry-After")
            await problem(429, refusal.title, refusal.detail, headers=decision.headers())(
                scope, receive, send
            )
            return
        tags = [(b"etag", cached.etag), _NO_CACHE, *limits]
        if matches(if_none_match, cached.etag.decode("latin-1")):
            await _send(send, 304, tags, b"")
            return
        length = str(len(cached.body)).encode()
        described = [(b"content-type", cached.content_type), (b"content-length", length)]
        await _send(send, 200, [*described, *tags], cached.body)

    async def _miss(
        self,
        scope: Scope,
        receive: Receive,
        send: Send,
        cache: DetailCache,
        domain: str,
        if_none_match: str | None,
    ) -> None:
        """Let the route render the full detail, keep it, answer as the client asked."""
        ticket = cache.reserve(domain)  # before the route reads the database
        scope["headers"] = [(k, v) for k, v in scope["headers"] if k != b"if-none-match"]
        response = _Buffered(send)
        try:
            await self.app(scope, receive, response.keep)
        finally:
            if not (response.start and _keep(cache, domain, ticket, response)):
                cache.release(domain, ticket)
        if response.start is None:
            return  # nothing was answered: nothing to pass on
        etag = dict(response.headers).get(b"etag", b"").decode("latin-1")
        if response.start["status"] == 200 and etag and matches(if_none_match, etag):
            bodiless = [
                (k, v) for k, v in response.headers if k not in (b"content-type", b"content-length")
            ]
            await _send(send, 304, bodiless, b"")
            return
        await send(response.start)
        await send({"type": "http.response.body", "body": response.body})


class _Buffered:
    """The route's response, held back until it is complete."""

    def __init__(self, send: Send) -> None:
        self._send = send
        self.start: Message | None = None
        self._chunks: list[bytes] = []

    async def keep(self, message: Message) -> None:
        if message["type"] == "http.response.start":
            self.start = message
        elif message["type"] == "http.response.body":
            self._chunks.append(message.get("body", b""))
        else:
            await self._send(message)

    @property
    def headers(self) -> list[tuple[bytes, bytes]]:
        return list(self.start.get("headers", [])) if self.start else []

    @property
    def body(self) -> bytes:
        return b"".join(self._chunks)


def _cacheable_domain(scope: Scope) -> str | None:
    """The normalised domain of a detail read the route would accept, else None."""
    if scope["type"] != "http" or scope["method"] != "GET" or scope.get("query_string"):
        return None  # the route takes no query parameter: it refuses any, not the cache
    path: str = scope["path"]
    if not path.startswith(PREFIX):
        return None
    raw = path[len(PREFIX) :]
    if not 3 <= len(raw) <= 253 or _DOMAIN.fullmatch(raw) is None:
        return None
    try:
        return normalize_domain(raw)
    except ValueError:
        return None


def _bearer(authorization: bytes | None) -> str | None:
    """The token as ``HTTPBearer`` reads it; None where it would refuse the header."""
    if not authorization:
        return None
    scheme, token = get_authorization_scheme_param(authorization.decode("latin-1"))
    return token if scheme.lower() == "bearer" and token else None


def _keep(cache: DetailCache, domain: str, ticket: int | None, response: _Buffered) -> bool:
    headers = dict(response.headers)
    etag, content_type = headers.get(b"etag"), headers.get(b"content-type")
    if response.start is None or response.start["status"] != 200 or not etag or not content_type:
        return False
    rendered = Rendered(etag=etag, body=response.body, content_type=content_type)
    return cache.store(domain, ticket, rendered)


async def _send(send: Send, status: int, headers: list[tuple[bytes, bytes]], body: bytes) -> None:
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
