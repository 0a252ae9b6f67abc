"""The envelope every event carries, whatever its family.

Rules of the contract (see schemas/README.md): unknown fields are ignored, a version only
ever gains optional fields, and a breaking change is a new ``schema_version``.
"""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Annotated, Literal

from pydantic import AwareDatetime, BaseModel, BeforeValidator, ConfigDict, Field, StringConstraints

SCHEMA_VERSION = 1

_DOMAIN = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?(\.[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?)+$")


def normalize_domain(value: str) -> str:
    """Accounts are addressed by their primary domain: lower-case, no scheme, no "www."."""
    # Every event names its account, and every consumer decodes every event: a few
    # thousand accounts make most of the traffic. Long values (padding) are not kept.
    if len(value) <= _MAX_CACHED_LENGTH:
        return _normalized(value)
    return _normalize(value)


_MAX_CACHED_LENGTH = 256


@lru_cache(maxsize=32768)
def _normalized(value: str) -> str:
    return _normalize(value)  # a ValueError is raised again each time, never kept


def _normalize(value: str) -> str:
    domain = value.strip().lower().removeprefix("http://").removeprefix("https://")
    domain = domain.split("/", 1)[0].rstrip(".")
    if len(domain) > 253 or not _DOMAIN.match(domain):
        raise ValueError(f"not a domain name: {value[:64]!r}")
    bare = domain.removeprefix("www.")
    return bare if _DOMAIN.match(bare) else domain  # "www.io" is itself the domain


# The length constraints before the validator: pydantic then checks them in its core, on
# the normalised value. After it, they ran as Python functions, a fifth of every decode.
Domain = Annotated[
    str,
    StringConstraints(min_length=3, max_length=253),
    BeforeValidator(lambda v: normalize_domain(v) if isinstance(v, str) else v),
]
# No NUL characters: PostgreSQL text and JSONB reject them, so one would poison the
# consumers' state writes; they are refused here, at the contract, instead.
NO_NUL = r"^[^\x00]*$"
ShortText = Annotated[str, StringConstraints(max_length=256, pattern=NO_NUL)]
LongText = Annotated[str, StringConstraints(max_length=2048, pattern=NO_NUL)]


AccountProvenance = Literal["group_id", "email_domain", "visitor", "ip_range", "stitched", "api"]
"""How an event's account was found, strongest first: the sender named it (``group_id``),
a contact's email domain, an earlier identification of the same visitor, the company IP
ranges, a later identification applied downstream (``stitched``), or an API write."""


class Model(BaseModel):
    """Base of every schema model: immutable, unknown fields ignored."""

    model_config = ConfigDict(frozen=True, extra="ignore", populate_by_name=True)


class Envelope(Model):
    """Fields shared by every event.

    ``account`` is the account's primary domain once known. Until then the event is keyed
    by ``anonymous_id`` so that one visitor's events keep their order on one partition.
    """

    event_id: Annotated[str, StringConstraints(min_length=1, max_length=128, pattern=NO_NUL)]
    schema_version: int = SCHEMA_VERSION
    occurred_at: AwareDatetime
    received_at: AwareDatetime
    account: Domain | None = None
    anonymous_id: ShortText | None = None
    source: ShortText = Field(description="Name of the source (write key owner or service).")
    is_bot: bool = False
    account_provenance: AccountProvenance | None = Field(
        default=None, description="Which evidence named ``account`` (see AccountProvenance)."
    )
    account_confidence: float | None = Field(
        default=None, ge=0, le=1, description="How sure that evidence is, from 0 to 1."
    )
    client_occurred_at: AwareDatetime | None = Field(
        default=None,
        description="The sender's raw clock value for when the event happened, before "
        "``occurred_at`` corrected it for clock skew (Segment ``originalTimestamp`` or "
        "``timestamp``, Snowplow ``dtm``/``ttm``, native ``occurred_at``).",
    )
    client_sent_at: AwareDatetime | None = Field(
        default=None,
        description="The sender's raw clock value for when it sent the event (Segment "
        "``sentAt``, Snowplow ``stm``, native ``sent_at``), before any correction.",
    )

    @property
    def account_key(self) -> str:
        return account_key(self.account, self.anonymous_id)


def account_key(account: str | None, anonymous_id: str | None) -> str:
    """The partitioning key: the account's domain, else ``anon:<visitor id>``."""
    if account:
        return account
    if anonymous_id:
        return f"anon:{anonymous_id}"
    return "anon:unknown"
