"""Credentials administration (admin scope): write keys for sources, API tokens for tools.

A secret is shown once, when created; only its SHA-256 is stored, and that hash is the id
used to list and revoke it. Revocation reaches every replica within the lookup cache's
lifetime (``ABM_API_TOKEN_CACHE_S`` / ``ABM_INGEST_WRITE_KEY_CACHE_S``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from fastapi import APIRouter, Path, Request, Response
from pydantic import BaseModel, Field

from schemas.envelope import NO_NUL
from services.api.errors import NotFound
from services.kit import credentials

router = APIRouter(prefix="/admin")

Scope = Literal["read", "write", "admin"]
HashId = Annotated[str, Path(min_length=64, max_length=64, pattern="^[0-9a-f]{64}$")]


class WriteKeyRequest(BaseModel):
    source: str = Field(
        min_length=1, max_length=256, pattern=NO_NUL, description="The website or tool sending"
    )
    ip_policy: credentials.IpPolicy = Field(
        default="truncate",
        description="What ingest keeps of visitors' IPs after the account lookup: keep, "
        "truncate (IPv4 /24, IPv6 /48) or drop",
    )


class TokenRequest(BaseModel):
    name: str = Field(min_length=1, max_length=256, pattern=NO_NUL)
    scopes: list[Scope] = Field(min_length=1)


class Credential(BaseModel):
    id: str = Field(description="SHA-256 of the secret")
    label: str
    scopes: list[str] | None = None
    ip_policy: str | None = Field(default=None, description="Write keys only")
    created_at: datetime
    revoked_at: datetime | None = None


class CreatedCredential(Credential):
    secret: str = Field(description="Shown once; store it now")


@router.post("/write-keys", status_code=201, response_model=CreatedCredential)
async def create_write_key(request: Request, body: WriteKeyRequest) -> CreatedCredential:
    secret = credentials.new_secret("wk")
    async with request.state.api.sessions() as session, session.begin():
        await credentials.store_write_key(session, secret, body.source, body.ip_policy)
        rows = await credentials.list_write_keys(session)
    return CreatedCredential(
        **_write_key(_by_id(rows, "key_hash", secret)).model_dump(), secret=secret
    )


@router.get("/write-keys", response_model=list[Credential])
async def list_write_keys(request: Request) -> list[Credential]:
    async with request.state.api.sessions() as session:
        return [_write_key(row) for row in await credentials.list_write_keys(session)]


@router.delete("/write-keys/{key_id}", status_code=204, response_class=Response)
async def revoke_write_key(request: Request, key_id: HashId) -> Response:
    async with request.state.api.sessions() as session, session.begin():
        if not await credentials.revoke_write_key(session, key_id):
            raise NotFound("no active write key with that id")
    return Response(status_code=204)


@router.post("/tokens", status_code=201, response_model=CreatedCredential)
async def create_token(request: Request, body: TokenRequest) -> CreatedCredential:
    secret = credentials.new_secret("abm")
    async with request.state.api.sessions() as session, session.begin():
        await credentials.store_api_token(session, secret, body.name, frozenset(body.scopes))
        rows = await credentials.list_api_tokens(session)
    return CreatedCredential(
        **_token(_by_id(rows, "token_hash", secret)).model_dump(), secret=secret
    )


@router.get("/tokens", response_model=list[Credential])
async def list_tokens(request: Request) -> list[Credential]:
    async with request.state.api.sessions() as session:
        return [_token(row) for row in await credentials.list_api_tokens(session)]


@router.delete("/tokens/{token_id}", status_code=204, response_class=Response)
async def revoke_token(request: Request, token_id: HashId) -> Response:
    async with request.state.api.sessions() as session, session.begin():
        if not await credentials.revoke_api_token(session, token_id):
            raise NotFound("no active token with that id")
    return Response(status_code=204)


def _by_id(rows: list[dict[str, object]], column: str, secret: str) -> dict[str, object]:
    wanted = credentials.hash_secret(secret)
    return next(row for row in rows if row[column] == wanted)


def _write_key(row: dict[str, object]) -> Credential:
    return Credential(
        id=str(row["key_hash"]),
        label=str(row["source"]),
        ip_policy=str(row["ip_policy"]),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )


def _token(row: dict[str, object]) -> Credential:
    return Credential(
        id=str(row["token_hash"]),
        label=str(row["name"]),
        scopes=str(row["scopes"]).split(),
        created_at=row["created_at"],
        revoked_at=row["revoked_at"],
    )
