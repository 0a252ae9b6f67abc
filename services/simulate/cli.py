"""`abm simulate`: post a realistic history for N accounts through ingest, then report."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

from services.simulate.runner import simulate


def run_simulation(
    *, ingest_url: str, write_key: str, accounts: int, seed: int, rate: float | None = None
) -> None:
    try:
        summary = asyncio.run(
            simulate(
                ingest_url=ingest_url,
                write_key=write_key,
                accounts=accounts,
                seed=seed,
                rate=rate,
                now=datetime.now(UTC),  # the entry point owns the clock; the scenario is pure
            )
        )
    except KeyboardInterrupt:  # Ctrl-C in `make run` before the history was all posted
        print("Simulation interrupted.", file=sys.stderr, flush=True)
        raise SystemExit(130) from None
    print(summary.render(), flush=True)
