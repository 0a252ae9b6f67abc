"""Write keys and API tokens: stored as SHA-256 hashes, never in clear.

Keys are long random tokens, so an unsalted fast hash is the standard choice (as for
GitHub or Stripe keys): it cannot be brute-forced and lookups stay a primary-key read.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime
from typing import Literal

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.kit.dialect import upsert_statement
from services.kit.tables import api_tokens, write_keys

SCOPES = frozenset({"read", "write", "admin"})

# What ingest keeps of a visitor's IP after the account lookup, per write key.
IpPolicy = Literal["keep", "truncate", "drop"]
IP_POLICIES: tuple[IpPolicy, ...] = ("keep", "truncate", "drop")


def hash_secret(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def new_secret(prefix: str) -> str:
    return f"{prefix}_{secrets.token_urlsafe(24)}"


async def source_for_write_key(session: AsyncSession, key: str) -> str | None:
    """The source name of an active write key, or None."""
    row = await session.execute(
        select(write_keys.c.source)
        .where(write_keys.c.key_hash == hash_secret(key))
        .where(write_keys.c.revoked_at.is_(None))
    )
    return row.scalar_one_or_none()


async def write_key_access(session: AsyncSession, key: str) -> tuple[str, IpPolicy] | None:
    """The source name and IP policy of an active write key, or None."""
    row = (
        await session.execute(
            select(write_keys.c.source, write_keys.c.ip_policy)
            .where(write_keys.c.key_hash == hash_secret(key))
            .where(write_keys.c.revoked_at.is_(None))
        )
    ).one_or_none()
    if row is None:
        return None
    policy: IpPolicy = next((p for p in IP_POLICIES if p == row.ip_policy), "truncate")
    return str(row.source), policy


async def scopes_for_token(session: AsyncSession, token: str) -> frozenset[str] | None:
    row = await session.execute(
        select(api_tokens.c.scopes)
        .where(api_tokens.c.token_hash == hash_secret(token))
        .where(api_tokens.c.revoked_at.is_(None))
    )
    scopes = row.scalar_one_or_none()
    return None if scopes is None else frozenset(scopes.split())


async def store_write_key(
    session: AsyncSession, key: str, source: str, ip_policy: IpPolicy = "truncate"
) -> None:
    await session.execute(
        upsert_statement(session, write_keys)
        .values(
            key_hash=hash_secret(key),
            source=source,
            ip_policy=ip_policy,
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )


async def store_api_token(
    session: AsyncSession, token: str, name: str, scopes: frozenset[str]
) -> None:
    unknown = scopes - SCOPES
    if unknown:
        raise ValueError(f"unknown scopes: {sorted(unknown)}")
    await session.execute(
        upsert_statement(session, api_tokens)
        .values(
            token_hash=hash_secret(token),
            name=name,
            scopes=" ".join(sorted(scopes)),
            created_at=datetime.now(UTC),
        )
        .on_conflict_do_nothing()
    )


async def seed_dev_credentials(session: AsyncSession, write_key: str, api_token: str) -> None:
    """Development mode only (`abm up`): a write key and an all-scopes API token."""
    await store_write_key(session, write_key, source="dev")
    await store_api_token(session, api_token, name="dev", scopes=SCOPES)


async def list_write_keys(session: AsyncSession) -> list[dict[str, object]]:
    rows = await session.execute(select(write_keys).order_by(write_keys.c.created_at))
    return [dict(r._mapping) for r in rows]


async def list_api_tokens(session: AsyncSession) -> list[dict[str, object]]:
    rows = await session.execute(select(api_tokens).order_by(api_tokens.c.created_at))
    return [dict(r._mapping) for r in rows]


async def revoke_write_key(session: AsyncSession, key_hash: str) -> bool:
    """True when an active key with that hash existed (its id in the API)."""
    result = await session.execute(
        update(write_keys)
        .where(write_keys.c.key_hash == key_hash)
        .where(write_keys.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def revoke_api_token(session: AsyncSession, token_hash: str) -> bool:
    result = await session.execute(
        update(api_tokens)
        .where(api_tokens.c.token_hash == token_hash)
        .where(api_tokens.c.revoked_at.is_(None))
        .values(revoked_at=datetime.now(UTC))
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]
