"""Input is checked at the edge and every error is a problem document, over real HTTP on
PostgreSQL: unknown query parameters, forged cursors, instants outside UTC, routing errors
and unexpected failures; RateLimit-* headers on the answers routes build themselves."""

from __future__ import annotations

import base64
import json
import logging
from typing import Any

import httpx
import pytest

from services.api import queries
from tests.api_server import READ, seed, serving

pytestmark = pytest.mark.integration

PROBLEM_JSON = "application/problem+json"


def cursor(position: dict[str, Any]) -> str:
    """A cursor as the API encodes one, holding whatever a client forged."""
    return base64.urlsafe_b64encode(json.dumps(position).encode()).decode().rstrip("=")


def assert_problem(response: httpx.Response, status: int, field: str | None = None) -> None:
    assert response.status_code == status, response.text
    assert response.headers["content-type"] == PROBLEM_JSON
    body = response.json()
    assert body["status"] == status and body["type"] == "about:blank"
    assert body["title"] and body["detail"]
    if field is not None:
        assert body["field"] == field


@pytest.mark.parametrize(
    ("path", "params", "unknown"),
    [
        ("/v1/accounts", {"stages": "won", "tierr": "9"}, "stages"),
        ("/v1/accounts", {"stage": "won", "tierr": "9"}, "tierr"),
        ("/v1/accounts/acct03.com", {"fields": "stage"}, "fields"),
        ("/v1/accounts/acct03.com/timeline", {"limit": "2", "sort": "x"}, "sort"),
        ("/v1/changes", {"acount": "acct01.com"}, "acount"),
        ("/v1/surges", {"topics": "pricing"}, "topics"),
        ("/v1/funnel", {"form": "2026-01-01T00:00:00Z"}, "form"),
        ("/v1/funnel", {"period_from": "2026-01-01T00:00:00Z"}, "period_from"),  # not the alias
        ("/v1/kpis", {"tier": "1", "teir": "1"}, "teir"),
        ("/v1/funnel/cohorts", {"x": ""}, "x"),
    ],
)
async def test_unknown_query_parameters_are_400_naming_the_parameter(
    api: httpx.AsyncClient, path: str, params: dict[str, str], unknown: str
) -> None:
    assert_problem(await api.get(path, params=params, headers=READ), 400, unknown)


async def test_declared_parameters_still_pass_and_authentication_comes_first(
    api: httpx.AsyncClient,
) -> None:
    known = {"stage": "engaged", "tier": "1", "sort": "-fit_score", "limit": "2"}
    assert (await api.get("/v1/accounts", params=known, headers=READ)).status_code == 200
    period = {"from": "2026-01-01T00:00:00Z", "to": "2026-05-01T00:00:00Z", "tier": "2"}
    assert (await api.get("/v1/funnel", params=period, headers=READ)).status_code == 200
    days = {"from": "2026-01-01", "to": "2026-05-01"}
    assert (await api.get("/v1/kpis", params=days, headers=READ)).status_code == 200
    assert_problem(await api.get("/v1/accounts", params={"tierr": "9"}), 401)


async def test_the_cached_account_detail_refuses_unknown_parameters_too(
    api: httpx.AsyncClient,
) -> None:
    """Cached after the first read, the detail is served before routing: not with extras."""
    for _ in range(2):
        assert (await api.get("/v1/accounts/acct03.com", headers=READ)).status_code == 200
    refused = await api.get("/v1/accounts/acct03.com", params={"x": "1"}, headers=READ)
    assert_problem(refused, 400, "x")


@pytest.mark.parametrize(
    ("path", "params", "field"),
    [
        ("/v1/changes", {"cursor": cursor({"k": "changes", "x": 0, "s": 10**30})}, "cursor"),
        ("/v1/changes", {"cursor": cursor({"k": "changes", "x": 2**63, "s": 0})}, "cursor"),
        (
            "/v1/accounts",
            {"sort": "domain", "cursor": cursor({"k": "accounts:domain", "v": [1], "d": "a.com"})},
            "cursor",
        ),
        (
            "/v1/accounts",
            {"cursor": cursor({"k": "accounts:domain", "v": "a\x00", "d": "a.com"})},
            "cursor",
        ),
        (
            "/v1/accounts",
            {"cursor": cursor({"k": "accounts:domain", "v": "a.com", "d": "a\x00.com"})},
            "cursor",
        ),
        (
            "/v1/accounts",
            {
                "sort": "-fit_score",
                "cursor": cursor({"k": "accounts:-fit_score", "v": 10**400, "d": "a.com"}),
            },
            "cursor",
        ),
        (
            "/v1/accounts",
            {
                "sort": "updated_at",
                "cursor": cursor(
                    {"k": "accounts:updated_at", "v": "0001-01-01T00:00:00+01:00", "d": "a.com"}
                ),
            },
            "cursor",
        ),
        (
            "/v1/accounts",
            {
                "sort": "updated_at",
                "cursor": cursor(
                    {"k": "accounts:updated_at", "v": "2026-04-01T00:00:00", "d": "a.com"}
                ),
            },
            "cursor",
        ),
        (
            "/v1/accounts/acct03.com/timeline",
            {"cursor": cursor({"k": "timeline:acct03.com", "t": "2026-04-01T00:00Z", "e": "\x00"})},
            "cursor",
        ),
        (
            "/v1/surges",
            {"cursor": cursor({"k": "surges", "t": "0001-01-01T00:00:00+01:00", "e": "s1"})},
            "cursor",
        ),
        ("/v1/accounts", {"changed_since": "0001-01-01T00:00:00+01:00"}, "changed_since"),
        ("/v1/accounts", {"changed_since": "9999-12-31T23:59:59-01:00"}, "changed_since"),
        ("/v1/funnel", {"from": "0001-01-01T00:00:00+01:00"}, "from"),
        ("/v1/funnel", {"to": "9999-12-31T23:59:59-01:00"}, "to"),
    ],
)
async def test_forged_cursors_and_instants_outside_utc_are_400_problems(
    api: httpx.AsyncClient, path: str, params: dict[str, str], field: str
) -> None:
    assert_problem(await api.get(path, params=params, headers=READ), 400, field)


async def test_the_earliest_and_latest_utc_instants_are_answered(api: httpx.AsyncClient) -> None:
    earliest = {"changed_since": "0001-01-01T00:00:00Z", "stage": "engaged"}
    page = await api.get("/v1/accounts", params=earliest, headers=READ)
    assert page.status_code == 200 and len(page.json()["items"]) == 10
    period = {"from": "0001-01-01T00:00:00Z", "to": "9999-12-31T23:59:59Z"}
    assert (await api.get("/v1/funnel", params=period, headers=READ)).status_code == 200


async def test_unknown_paths_and_methods_are_problems(api: httpx.AsyncClient) -> None:
    missing = await api.get("/v1/acounts", headers=READ)
    assert_problem(missing, 404)
    assert "/v1/acounts" in missing.json()["detail"]
    wrong = await api.post("/v1/funnel", headers=READ)
    assert_problem(wrong, 405)
    assert wrong.headers["allow"] == "GET" and "POST" in wrong.json()["detail"]


async def test_an_unexpected_error_is_a_500_problem_that_keeps_its_text_to_the_log(
    api: httpx.AsyncClient, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    async def broken(*_args: Any) -> Any:
        raise RuntimeError("password=hunter2 in a connection string")

    monkeypatch.setattr(queries, "stage_counts", broken)
    with caplog.at_level(logging.ERROR, logger="services.api.errors"):
        response = await api.get("/v1/funnel", headers=READ)
    assert_problem(response, 500)
    assert "hunter2" not in response.text and "RuntimeError" not in response.text
    logged = [r for r in caplog.records if r.name == "services.api.errors"]
    assert logged and logged[0].exc_info and "hunter2" in str(logged[0].exc_info[1])


async def test_answers_routes_build_themselves_carry_rate_limit_headers(pg_url: str) -> None:
    """The detail route's own 304 (no detail cache), a stream, and a problem raised after
    the limit was counted: FastAPI would drop the dependency's headers from all three."""
    await seed(pg_url)
    # One token a minute: none comes back between the requests, however slow the machine
    # (at the default 20 a second, one did while the stream opened, and the count was off).
    limits = {"api_rate_limit_burst": 10, "api_rate_limit_per_minute": 1}
    async with serving(pg_url, api_detail_cache_mb=0, **limits) as client:
        first = await client.get("/v1/accounts/acct03.com", headers=READ)
        revalidated = await client.get(
            "/v1/accounts/acct03.com", headers={**READ, "If-None-Match": first.headers["etag"]}
        )
        missing = await client.get("/v1/accounts/nobody.com", headers=READ)
        async with client.stream("GET", "/v1/stream", headers=READ, timeout=10) as stream:
            streamed = stream.headers
    assert revalidated.status_code == 304
    assert first.headers["ratelimit-remaining"] == "9"
    assert revalidated.headers["ratelimit-remaining"] == "8"
    assert revalidated.headers["ratelimit-limit"] == "10"
    assert "ratelimit-reset" in revalidated.headers
    assert missing.status_code == 404 and missing.headers["ratelimit-remaining"] == "7"
    assert streamed["ratelimit-remaining"] == "6"
