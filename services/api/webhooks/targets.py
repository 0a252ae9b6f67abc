"""Where webhooks may be delivered: not into the network the API runs in.

A subscriber chooses the URL and reads each attempt's status code back from the delivery
log, so delivering to internal addresses would let any write token probe the internal
network (or a cloud metadata service at 169.254.169.254). A URL is checked when subscribed
and again before every delivery (a name can be pointed at an internal address later); the
delivery then connects to the very address checked, so a second lookup cannot swap it.
``ABM_WEBHOOK_ALLOW_PRIVATE_TARGETS`` (or dev mode) lifts the rule, for receivers on the
same machine or network.
"""

from __future__ import annotations

import asyncio
import ipaddress
import socket
from dataclasses import dataclass
from ipaddress import IPv4Address, IPv6Address

import httpx

Address = IPv4Address | IPv6Address


class RefusedTarget(Exception):
    """The URL's host is, or resolves to, an address webhooks must not reach. The message
    is for the subscriber and names no resolved address (that would leak internal DNS);
    ``address`` is for the operator's log."""

    def __init__(self, message: str, address: Address | None = None) -> None:
        super().__init__(message)
        self.address = address


def is_internal(address: Address) -> bool:
    """Loopback, private, link-local, multicast, reserved, unspecified, or otherwise not
    globally reachable (shared 100.64.0.0/10 holds some clouds' metadata services)."""
    embedded = _embedded_ipv4(address)
    if embedded is not None:
        return is_internal(embedded)
    return (
        address.is_loopback
        or address.is_private
        or address.is_link_local
        or address.is_multicast
        or address.is_reserved
        or address.is_unspecified
        or not address.is_global
    )


def _embedded_ipv4(address: Address) -> IPv4Address | None:
    """The IPv4 address an IPv6 one carries to the same host (mapped, or 6to4)."""
    if isinstance(address, IPv4Address):
        return None
    return address.ipv4_mapped or address.sixtofour


def literal_address(host: str) -> Address | None:
    """``host`` as an IP address, if it is one (brackets of an IPv6 URL host allowed)."""
    try:
        return ipaddress.ip_address(host.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None


async def resolve(host: str, timeout_s: float) -> list[Address]:
    """The addresses ``host`` names: itself if a literal, else those DNS returns (none when
    it does not resolve in time)."""
    literal = literal_address(host)
    if literal is not None:
        return [literal]
    loop = asyncio.get_running_loop()
    try:
        found = await asyncio.wait_for(
            loop.getaddrinfo(host, None, type=socket.SOCK_STREAM), timeout_s
        )
    except (OSError, TimeoutError, UnicodeError):
        return []
    addresses: list[Address] = []
    for *_, sockaddr in found:
        address = literal_address(str(sockaddr[0]))
        if address is not None and address not in addresses:
            addresses.append(address)
    return addresses


def refuse_internal(host: str, addresses: list[Address]) -> None:
    """Raise ``RefusedTarget`` if any of ``host``'s addresses is internal (a name
    resolving to public and internal ones would reach the internal one at times)."""
    for address in addresses:
        if is_internal(address):
            raise RefusedTarget(
                f"{host[:253]} is or resolves to an internal (loopback, private, link-local "
                "or reserved) address; webhooks reach public addresses only",
                address,
            )


async def check_subscription(url: str, timeout_s: float) -> None:
    """At subscription: refuse a URL whose host is or resolves to an internal address. A
    name that does not resolve yet is accepted; every delivery checks it again."""
    host = httpx.URL(url).host
    refuse_internal(host, await resolve(host, timeout_s))


@dataclass(frozen=True, slots=True)
class PinnedRequest:
    """A delivery's URL with its host replaced by the address checked, and what keeps the
    request addressed to the named host (``Host`` header, TLS server name)."""

    url: httpx.URL
    headers: dict[str, str]
    extensions: dict[str, str]


async def pin_delivery(url: str, timeout_s: float) -> PinnedRequest:
    """At delivery: the request to send to a public address of ``url``'s host, or
    ``RefusedTarget`` if it is (or resolves to) an internal one, or to nothing."""
    parsed = httpx.URL(url)
    host = parsed.host
    addresses = await resolve(host, timeout_s)
    if not addresses:
        raise RefusedTarget(f"{host[:253]} does not resolve")
    refuse_internal(host, addresses)
    if literal_address(host) is not None:
        return PinnedRequest(parsed, {}, {})
    extensions = {"sni_hostname": host} if parsed.scheme == "https" else {}
    return PinnedRequest(
        parsed.copy_with(host=str(addresses[0])),
        {"Host": parsed.netloc.decode("ascii")},
        extensions,
    )
