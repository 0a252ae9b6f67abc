"""What is kept of a visitor's IP address once the account lookup is done (pure).

Per source (write key): ``keep`` it, ``truncate`` it to its network (IPv4 /24, IPv6 /48:
enough for geography and rough company ranges, no longer one household), or ``drop`` it.
Our events carry no IP field, so the policy applies to what we forward raw: the
dead-letter copies of rejected messages (Segment ``context.ip``, Snowplow ``ip``).
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from typing import Any

from services.kit.credentials import IpPolicy

TRUNCATE_V4_PREFIX = 24
TRUNCATE_V6_PREFIX = 48


def apply_ip_policy(address: Any, policy: IpPolicy) -> str | None:
    """The address as the policy keeps it; something that is not an address is dropped."""
    if policy == "keep":
        return address if isinstance(address, str) else None
    if policy == "drop" or not isinstance(address, str):
        return None
    try:
        parsed = ipaddress.ip_address(address.strip().split("%", 1)[0])
    except ValueError:
        return None
    if isinstance(parsed, ipaddress.IPv6Address) and parsed.ipv4_mapped is not None:
        parsed = parsed.ipv4_mapped
    prefix = TRUNCATE_V4_PREFIX if parsed.version == 4 else TRUNCATE_V6_PREFIX
    return str(ipaddress.ip_network(f"{parsed}/{prefix}", strict=False).network_address)


def scrub_message(message: Any, policy: IpPolicy) -> Any:
    """A copy of a raw message with its IPs (``context.ip``, top-level ``ip``) per policy."""
    if policy == "keep" or not isinstance(message, Mapping):
        return message
    scrubbed = dict(message)
    if "ip" in scrubbed:
        _set_or_drop(scrubbed, "ip", apply_ip_policy(scrubbed["ip"], policy))
    context = scrubbed.get("context")
    if isinstance(context, Mapping) and "ip" in context:
        inner = dict(context)
        _set_or_drop(inner, "ip", apply_ip_policy(inner["ip"], policy))
        scrubbed["context"] = inner
    return scrubbed


def _set_or_drop(document: dict[str, Any], key: str, value: str | None) -> None:
    if value is None:
        document.pop(key, None)
    else:
        document[key] = value
