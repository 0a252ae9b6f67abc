"""API errors, rendered in one shape: RFC 9457 problem details.

ApiProblem (status, title, detail)
├── Unauthorized   401  no or unknown bearer token
├── Forbidden      403  token lacks the scope
├── NotFound       404
└── BadRequest     400  a parameter's value is unusable (names the parameter)

Starlette's own errors (no such path: 404, method not allowed: 405), the database out of
reach (503 with Retry-After: the client's request was fine, the dependency is not) and any
other unhandled exception (500, its text logged, never sent) are rendered in the same shape.
"""

from __future__ import annotations

import logging
from http import HTTPStatus
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException

log = logging.getLogger(__name__)

PROBLEM_JSON = "application/problem+json"


class Problem(BaseModel):
    """RFC 9457 problem details, the one shape of every error."""

    type: str = "about:blank"
    title: str
    status: int
    detail: str
    field: str | None = Field(default=None, description="The parameter or field at fault")


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI ``responses`` entries for these error statuses, in problem+json."""
    schema = {"$ref": "#/components/schemas/Problem"}
    return {
        status: {"model": Problem, "content": {PROBLEM_JSON: {"schema": schema}}}
        for status in statuses
    }


class ApiProblem(Exception):
    status = 500
    title = "Internal error"

    def __init__(
        self, detail: str, *, field: str | None = None, headers: dict[str, str] | None = None
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.field = field
        self.headers = headers or {}


class Unauthorized(ApiProblem):
    status, title = 401, "Unauthorized"


class Forbidden(ApiProblem):
    status, title = 403, "Forbidden"


class NotFound(ApiProblem):
    status, title = 404, "Not found"


class BadRequest(ApiProblem):
    status, title = 400, "Bad request"


class TooManyRequests(ApiProblem):
    status, title = 429, "Too many requests"


class ServiceUnavailable(ApiProblem):
    status, title = 503, "Service unavailable"


def problem(
    status: int,
    title: str,
    detail: str,
    field: str | None = None,
    headers: dict[str, str] | None = None,
) -> JSONResponse:
    body: dict[str, object] = {
        "type": "about:blank",
        "title": title,
        "status": status,
        "detail": detail,
    }
    if field:
        body["field"] = field
    headers = {**(headers or {}), **({"WWW-Authenticate": "Bearer"} if status == 401 else {})}
    return JSONResponse(body, status_code=status, media_type=PROBLEM_JSON, headers=headers)


async def handle_problem(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, ApiProblem)
    return problem(error.status, error.title, error.detail, error.field, error.headers)


async def handle_validation(_request: Request, error: Exception) -> JSONResponse:
    assert isinstance(error, RequestValidationError)
    first = error.errors()[0]
    field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("query", "path", "body"))
    return problem(422, "Invalid parameter", str(first.get("msg", "invalid")), field or None)


async def handle_http(request: Request, error: Exception) -> JSONResponse:
    """Routing's own refusals: no route for the path (404), or not for the method (405)."""
    assert isinstance(error, HTTPException)
    headers = dict(error.headers or {})
    detail = str(error.detail)
    if error.status_code == 404 and detail == "Not Found":
        detail = f"no such path: {request.url.path[:200]}"
    elif error.status_code == 405 and detail == "Method Not Allowed":
        detail = f"{request.method} is not allowed here; allowed: {headers.get('Allow', 'none')}"
    return problem(error.status_code, _title(error.status_code), detail, headers=headers)


async def handle_unexpected(request: Request, error: Exception) -> JSONResponse:
    """A bug: logged with its traceback; the client learns nothing of its text. Except a
    database out of reach (restart, failover, pool exhausted): 503 with Retry-After, the
    client's request was fine. Registered for ``DATABASE_UNAVAILABLE`` too, so that routes'
    errors are answered inside the middlewares (a middleware's own, here at the edge)."""
    if database_unavailable(error):
        log.warning(
            "database unavailable answering %s %s: %s",
            request.method,
            request.url.path,
            type(error).__name__,
        )
        return problem(
            503,
            "Service unavailable",
            "the database is unavailable; retry",
            headers={"Retry-After": DATABASE_RETRY_AFTER_S},
        )
    log.error(
        "unhandled error answering %s %s",
        request.method,
        request.url.path,
        exc_info=(type(error), error, error.__traceback__),
    )
    return problem(500, "Internal error", "an unexpected error; it has been logged")


# What a database out of reach raises: a connection refused or cut (raw, or wrapped by
# SQLAlchemy), the server shutting down, no pooled connection free in time.
DATABASE_UNAVAILABLE: tuple[type[Exception], ...] = (DBAPIError, OSError, PoolTimeout)
DATABASE_RETRY_AFTER_S = "5"


def database_unavailable(error: BaseException) -> bool:
    """Whether ``error`` says the database is out of reach, not that a query is wrong."""
    if isinstance(error, DBAPIError):
        return error.connection_invalidated or isinstance(error, OperationalError | InterfaceError)
    return isinstance(error, OSError | PoolTimeout)


def _title(status: int) -> str:
    try:
        return HTTPStatus(status).phrase.capitalize()  # "Method not allowed", as ours read
    except ValueError:
        return "Error"
