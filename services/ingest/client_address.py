"""The visitor's IP address for browser-facing routes (pixel, tag, Snowplow), pure.

Behind a load balancer or ingress the TCP peer is the proxy; ``X-Forwarded-For`` names the
client, but anyone can send that header, so it is read only when the peer is one of the
configured trusted proxies (``ABM_INGEST_TRUSTED_PROXIES``). The list is then walked from
the right (the nearest hop) to the first address that is not a trusted proxy.
(Uvicorn already applies ``X-Forwarded-For`` from ``FORWARDED_ALLOW_IPS``, by default
127.0.0.1 and ::1 only, before the peer reaches us.)
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from ipaddress import IPv4Network, IPv6Network, ip_address

from starlette.requests import Request
from starlette.types import Scope

Network = IPv4Network | IPv6Network


def client_address(
    peer: str | None, forwarded_for: str | None, trusted_proxies: Sequence[Network]
) -> str | None:
    """The client's address, or None when there is no usable one."""
    if peer is None or not _is_address(peer):
        return None
    if not forwarded_for or not _trusted(peer, trusted_proxies):
        return peer
    hops = [hop.strip() for hop in forwarded_for.split(",")]
    for hop in reversed(hops):
        if not _is_address(hop):
            return None  # a forged or garbled hop: nothing left of it can be believed
        if not _trusted(hop, trusted_proxies):
            return hop
    return hops[0]  # every hop is ours: the first one is the origin


@lru_cache(maxsize=4096)  # the same few peers send most hits; parsing one costs 3 µs
def _is_address(text: str) -> bool:
    try:
        ip_address(text)
    except ValueError:
        return False
    return True


def _trusted(address: str, trusted_proxies: Sequence[Network]) -> bool:
    parsed = ip_address(address)
    return any(parsed in network for network in trusted_proxies)


def request_context(request: Request, trusted_proxies: Sequence[Network]) -> dict[str, str]:
    """``{"ip": <client address>}`` for a request's batch context, or ``{}``."""
    return scope_context(request.scope, trusted_proxies)


def scope_context(scope: Scope, trusted_proxies: Sequence[Network]) -> dict[str, str]:
    """``request_context`` from the ASGI scope, without building a request (the pixel)."""
    client = scope.get("client")
    peer = client[0] if client else None
    address = client_address(peer, header(scope, b"x-forwarded-for"), trusted_proxies)
    return {"ip": address} if address else {}


def header(scope: Scope, name: bytes) -> str | None:
    """The first value of header ``name`` (lower case), as Starlette's ``headers.get``."""
    for key, value in scope["headers"]:
        if key == name:
            return str(value.decode("latin-1"))
    return None
