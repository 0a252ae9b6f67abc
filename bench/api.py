"""The API under pollers: `GET /v1/accounts/{domain}` on 1,000,000 accounts in PostgreSQL,
32 concurrent connections (wrk), against an empty FastAPI endpoint served the same way,
and revalidations (If-None-Match -> 304) against full reads.
"""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import asyncpg
import httpx

from schemas.events import AccountUpserted
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.kit import migrate
from services.kit.broker import free_port
from tests.harness import stack, start_postgres, wait_until_ready

ACCOUNTS = 1_000_000
CONNECTIONS = 32
SECONDS = 10
SAMPLE = 20_000
TOKEN = "bench-token"

WRK_SCRIPT = """
local lines = {}
for line in io.lines("%(file)s") do lines[#lines + 1] = line end
math.randomseed(%(seed)d)
request = function()
  local domain, etag = lines[math.random(#lines)]:match("([^ ]+) ?(.*)")
  local headers = {["Authorization"] = "Bearer %(token)s"}
  if etag ~= "" then headers["If-None-Match"] = etag end
  return wrk.format("GET", "%(prefix)s" .. domain, headers)
end
done = function(summary, latency, requests)
  io.write(string.format("RESULT %%d %%f %%f %%f %%d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int

    @property
    def rate(self) -> float:
        return self.requests / self.seconds


@dataclass(frozen=True)
class ApiResult:
    empty: Load
    full: Load
    revalidate: Load


async def measure_api(scratch: Path) -> ApiResult:
    cluster = start_postgres()
    try:
        url = cluster.url(await cluster.create_database())
        await asyncio.to_thread(migrate.upgrade, url)
        await _load(cluster.admin_dsn.rsplit("/", 1)[0] + "/" + url.rsplit("/", 1)[1])
        with stack(url, "127.0.0.1:1", scratch) as running:
            running.env.update(
                {
                    "ABM_LOG_LEVEL": "WARNING",
                    "ABM_API_RATE_LIMIT_BURST": "100000000",
                    "ABM_API_WEBHOOKS_ENABLED": "false",
                }
            )
            running.start("api")
            api = running.url("api")
            await wait_until_ready(api, timeout_s=60)
            plain, tagged = await _samples(api, scratch)
            full = _wrk(api, "/v1/accounts/", plain, scratch, "full")
            revalidate = _wrk(api, "/v1/accounts/", tagged, scratch, "revalidate")
        empty = await _empty_baseline(plain, scratch)
    finally:
        cluster.stop()
    return ApiResult(empty=empty, full=full, revalidate=revalidate)


async def _load(dsn: str) -> None:
    """One million accounts with a real state document each, and one transition each."""
    template = _state_template()
    connection = await asyncpg.connect(dsn)
    try:
        await connection.execute(
            """
            INSERT INTO accounts (domain, name, is_target, fit_score, stage, stage_since,
                furthest_stage_rank, tier, last_activity_at, updated_at, state, revision)
            SELECT 'acct' || i || '.com', 'Account ' || i, true, 75,
                (ARRAY['target','engaged','opportunity','won','retention','expansion'])[1 + i % 6],
                now(), i % 6, 1 + i % 3, now(), now(),
                replace($1, 'template.com', 'acct' || i || '.com')::jsonb, i
            FROM generate_series(1, $2::int) AS i
            """,
            template,
            ACCOUNTS,
        )
        await connection.execute(
            """
            INSERT INTO api_tokens
            VALUES (encode(sha256($1::bytea), 'hex'), 'bench', 'read', now(), NULL);
            INSERT INTO account_transitions
            SELECT 'tr' || i, 'acct' || i || '.com', 'stage', NULL, 'target', now(),
                   'fit_above_threshold', 'funnel-1', '[]'::jsonb
            FROM generate_series(1, $2::int) AS i;
            """.replace("$1::bytea", f"'{TOKEN}'::bytea").replace("$2", str(ACCOUNTS))
        )
        await connection.execute("ANALYZE")
    finally:
        await connection.close()


def _state_template() -> str:
    at = datetime(2026, 1, 1, tzinfo=UTC)
    upsert = AccountUpserted(
        event_id="t",
        occurred_at=at,
        received_at=at,
        account="template.com",
        source="bench",
        name="Template",
        industry="software",
        country="US",
        employees=500,
        annual_revenue=4e7,
        target=True,
    )
    states, _ = apply_events({}, [upsert], FunnelConfig())
    return states["template.com"].model_dump_json()


async def _samples(api: str, scratch: Path) -> tuple[Path, Path]:
    """Random account domains, and the same with their current ETags."""
    domains = [f"acct{1 + (i * 7919) % ACCOUNTS}.com" for i in range(SAMPLE)]
    plain, tagged = scratch / "plain.txt", scratch / "tagged.txt"
    plain.write_text("\n".join(domains) + "\n")
    async with httpx.AsyncClient(
        base_url=api, headers={"Authorization": f"Bearer {TOKEN}"}
    ) as client:
        tags = [(await client.get(f"/v1/accounts/{d}")).headers["etag"] for d in domains[:2000]]
    tagged.write_text("\n".join(f"{d} {t}" for d, t in zip(domains, tags, strict=False)) + "\n")
    return plain, tagged


def _wrk(base: str, prefix: str, lines: Path, scratch: Path, name: str) -> Load:
    script = scratch / f"{name}.lua"
    script.write_text(WRK_SCRIPT % {"file": lines, "seed": 7, "token": TOKEN, "prefix": prefix})
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{SECONDS}s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {output[-500:]}")
    requests, seconds, p50, p99, errors = match.groups()
    return Load(int(requests), float(seconds), float(p50), float(p99), int(errors))


async def _empty_baseline(lines: Path, scratch: Path) -> Load:
    """The same server settings (uvicorn, one process, no access log) with an empty route."""
    port = free_port()
    env = {**os.environ, "ABM_EMPTY_PORT": str(port)}
    with (scratch / "empty.log").open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.empty_app", env=env, stdout=log, stderr=log
        )
    try:
        await wait_until_ready(f"http://127.0.0.1:{port}")
        return _wrk(f"http://127.0.0.1:{port}", "/empty/", lines, scratch, "empty")
    finally:
        server.terminate()
        await server.wait()


def render_api(result: ApiResult) -> str:
    rows = [
        ("empty FastAPI endpoint (baseline)", result.empty),
        ("`GET /v1/accounts/{domain}`, full read", result.full),
        ("same, `If-None-Match` revalidation (304)", result.revalidate),
    ]
    lines = [
        f"## API: {ACCOUNTS:,} accounts in PostgreSQL, {CONNECTIONS} concurrent pollers (wrk)",
        "",
        "| path | requests/s | p50 | p99 | errors |",
        "| --- | ---: | ---: | ---: | ---: |",
    ]
    lines += [
        f"| {n} | {r.rate:,.0f} | {r.p50_ms:.1f} ms | {r.p99_ms:.1f} ms | {r.errors} |"
        for n, r in rows
    ]
    lines += [
        "",
        f"Full read / empty endpoint: **{result.full.rate / result.empty.rate:.2f}**; "
        f"revalidation / full read: **{result.revalidate.rate / result.full.rate:.2f}x** the rate "
        "(targets, issue 6: 0.7, p99 10 ms, 2x).",
        "",
    ]
    return "\n".join(lines)
