"""Which account an event belongs to, and how we know (pure).

Order of evidence: an explicit ``groupId`` > a known contact's email domain (never a
free-mail domain) > an earlier identification of the same visitor. IP-range lookup and
durable visitor stitching come with the ingest issue; the provenance says which rule won.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

from schemas.envelope import normalize_domain

Provenance = Literal["group_id", "email_domain", "visitor", "none"]

FREE_MAIL_DOMAINS = frozenset(
    {
        "gmail.com", "googlemail.com", "yahoo.com", "yahoo.co.uk", "ymail.com", "hotmail.com",
        "hotmail.co.uk", "outlook.com", "live.com", "msn.com", "aol.com", "icloud.com",
        "me.com", "mac.com", "proton.me", "protonmail.com", "gmx.com", "gmx.de", "gmx.net",
        "web.de", "mail.com", "yandex.com", "yandex.ru", "zoho.com", "qq.com", "163.com",
        "126.com", "fastmail.com", "tutanota.com", "hey.com", "mail.ru", "orange.fr",
        "free.fr", "laposte.net", "t-online.de", "libero.it", "comcast.net", "verizon.net",
    }
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Resolution:
    account: str | None
    provenance: Provenance


def resolve_account(
    message: Mapping[str, Any], context: Mapping[str, Any], known: Callable[[str], str | None]
) -> Resolution:
    explicit = _explicit_group(message, context)
    if explicit:
        return Resolution(explicit, "group_id")
    domain = _email_domain(message, context)
    if domain:
        return Resolution(domain, "email_domain")
    for visitor in (message.get("anonymousId"), message.get("userId")):
        if isinstance(visitor, str) and (account := known(visitor)):
            return Resolution(account, "visitor")
    return Resolution(None, "none")


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


def _explicit_group(message: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    properties = message.get("properties")
    candidates = [
        message.get("groupId") if message.get("type") == "group" else None,
        context.get("groupId"),
        properties.get("account") if isinstance(properties, Mapping) else None,
    ]
    for candidate in candidates:
        if isinstance(candidate, str) and candidate.strip():
            try:
                return normalize_domain(candidate)
            except ValueError:
                continue  # a CRM id rather than a domain: fall back to other evidence
    return None


def _email_domain(message: Mapping[str, Any], context: Mapping[str, Any]) -> str | None:
    sources = [message.get("traits"), context.get("traits"), message.get("properties")]
    for source in sources:
        if isinstance(source, Mapping):
            for key in ("email", "contact_email"):
                value = source.get(key)
                if isinstance(value, str) and (domain := domain_of_email(value)):
                    return domain
    return None


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
