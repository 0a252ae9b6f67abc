"""Memory per account: the funnel's state of 1,000,000 accounts in PostgreSQL (table,
TOAST and indexes), and one decoded state in the consumer's cache.

States come from the pure core over a generated stream (every stage, contacts, scores),
so their size is the one a live program has; the 1,000,000 rows repeat those states
under distinct domains, written with COPY.
"""

from __future__ import annotations

import asyncio
import gc
import json
import secrets
import tracemalloc
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from schemas import topics
from services.funnel.config import FunnelConfig
from services.funnel.expiry import due_at
from services.funnel.processing import apply_events
from services.funnel.repository import account_row
from services.funnel.settings import FunnelSettings
from services.funnel.state import AccountState
from services.kit import migrate
from tests.harness import start_postgres
from tests.streams import generate

ACCOUNTS = 1_000_000
DISTINCT = 5_000
CACHE_SIZE = FunnelSettings.model_fields["funnel_state_cache"].default


@dataclass(frozen=True)
class MemoryResult:
    accounts: int
    database_bytes: int
    json_bytes: float
    decoded_bytes: float

    @property
    def database_per_account(self) -> float:
        return self.database_bytes / self.accounts


async def measure_funnel_memory(_scratch: Path) -> MemoryResult:
    config = FunnelConfig()
    states = list(apply_events({}, generate(DISTINCT, 30, seed=9), config)[0].values())
    documents = [state.model_dump_json() for state in states]
    decoded = _decoded_bytes(documents)
    cluster = start_postgres()
    try:
        url = cluster.url(await cluster.create_database())
        await asyncio.to_thread(migrate.upgrade, url)
        dsn = url.replace("postgresql+asyncpg://", "postgresql://")
        connection = await asyncpg.connect(dsn)
        try:
            await _copy_accounts(connection, states, config)
            await connection.execute("VACUUM ANALYZE accounts")
            size = await connection.fetchval("SELECT pg_total_relation_size('accounts')")
        finally:
            await connection.close()
    finally:
        cluster.stop()
    average_json = sum(len(d) for d in documents) / len(documents)
    return MemoryResult(ACCOUNTS, int(size), average_json, decoded)


def _decoded_bytes(documents: list[str]) -> float:
    """Bytes one decoded ``AccountState`` holds, as the consumer's cache keeps it."""
    gc.collect()
    tracemalloc.start()
    before = tracemalloc.take_snapshot()
    kept = [AccountState.model_validate_json(d) for d in documents]
    after = tracemalloc.take_snapshot()
    tracemalloc.stop()
    grown = sum(stat.size_diff for stat in after.compare_to(before, "filename"))
    assert len(kept) == len(documents)
    return grown / len(documents)


async def _copy_accounts(
    connection: asyncpg.Connection, states: list[AccountState], config: FunnelConfig
) -> None:
    """Rows as the funnel writes them (``repository.account_row``), one per distinct state,
    repeated under a new domain each (the document renamed as text: 1,000,000 dumps of the
    same state would take minutes)."""
    rows = [account_row(state, 0, due_at(state, config)) for state in states]
    chunk: list[dict[str, object]] = []
    for n in range(ACCOUNTS):
        row, domain = rows[n % DISTINCT], f"acct{n}.example.com"
        document = str(row["state"]).replace(json.dumps(row["domain"]), json.dumps(domain), 1)
        chunk.append(
            row
            | {
                "domain": domain,
                "state": document,
                "revision": secrets.randbits(62),
                "partition": topics.partition_of(domain, topics.EVENTS.partitions),
            }
        )
        if len(chunk) == 20_000:
            await _copy(connection, chunk)
            chunk = []
    if chunk:
        await _copy(connection, chunk)


async def _copy(connection: asyncpg.Connection, rows: list[dict[str, object]]) -> None:
    columns = list(rows[0])
    records = [tuple(row.values()) for row in rows]
    await connection.copy_records_to_table("accounts", records=records, columns=columns)


def render_memory(result: MemoryResult) -> str:
    mib = 2**20
    cache = result.decoded_bytes * CACHE_SIZE / mib
    lines = [
        "## Funnel memory per account",
        "",
        "| where | per account | for the whole |",
        "|---|---:|---:|",
        f"| PostgreSQL `accounts` (table, TOAST, indexes), {result.accounts:,} accounts | "
        f"{result.database_per_account:,.0f} B | {result.database_bytes / mib:,.0f} MiB |",
        f"| state document (JSON) | {result.json_bytes:,.0f} B | |",
        f"| decoded state in the consumer's cache | {result.decoded_bytes:,.0f} B | "
        f"{cache:,.0f} MiB at the default {CACHE_SIZE:,} cached states |",
        "",
        "The consumer's memory does not grow with the number of accounts: it holds at most",
        "`ABM_FUNNEL_STATE_CACHE` decoded states (LRU) and reads the others from PostgreSQL.",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    print(render_memory(asyncio.run(measure_funnel_memory(Path()))))
