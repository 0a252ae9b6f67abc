"""Which errors mean the database is out of reach (503, Retry-After) and which are bugs."""

from __future__ import annotations

import json

import pytest
from sqlalchemy.exc import DataError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.requests import Request

from services.api.errors import database_unavailable, handle_unexpected


def _request() -> Request:
    return Request({"type": "http", "method": "GET", "path": "/v1/accounts", "headers": []})


@pytest.mark.parametrize(
    "error",
    [
        ConnectionRefusedError(111, "Connect call failed"),
        OSError("Multiple exceptions: [Errno 111] Connect call failed"),
        OperationalError("SELECT 1", {}, Exception("the database system is shutting down")),
        InterfaceError("SELECT 1", {}, Exception("connection is closed")),
        PoolTimeout("QueuePool limit of size 10 overflow 10 reached"),
    ],
)
async def test_a_database_out_of_reach_is_503_with_retry_after(error: Exception) -> None:
    assert database_unavailable(error)
    response = await handle_unexpected(_request(), error)
    assert response.status_code == 503
    assert response.headers["retry-after"] == "5"
    assert json.loads(bytes(response.body))["status"] == 503


@pytest.mark.parametrize(
    "error",
    [DataError("SELECT 1", {}, Exception("invalid input syntax")), ValueError("a bug")],
)
async def test_anything_else_is_a_500(error: Exception) -> None:
    assert not database_unavailable(error)
    response = await handle_unexpected(_request(), error)
    assert response.status_code == 500
