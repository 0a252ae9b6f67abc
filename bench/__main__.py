"""`make bench`: throughput on this machine, each figure against a baseline measured in the
same run on the same broker (these machines are noisy: ratios, not absolutes).

1. ingest: events/s through `POST /v1/batch` (batches of 100) vs a bare aiokafka producer
   sending the same events with acks=all; pixel hits/s vs an empty FastAPI endpoint;
2. pipeline: events/s through the funnel consumer on PostgreSQL (decode, de-duplicate,
   pure core, state + offsets + outbox in one transaction, relay) vs consuming the same
   records and discarding them;
3. intent: updates/s of the pure surge model vs a bare float EWMA, and bytes per series;
4. api: `GET /v1/accounts/{domain}` on 1,000,000 accounts under 32 pollers (wrk) vs an
   empty FastAPI endpoint, and 304 revalidations vs full reads;
5. freshness: ingest acknowledgement to visible in the API and on the SSE stream, under
   background load (one process per service, then two funnel processes), with the cores
   each component used;
6. funnel memory per account: 1,000,000 accounts in PostgreSQL, one decoded state in the
   consumer's cache.

Results are written to docs/benchmarks.md.
"""

from __future__ import annotations

import asyncio
import os
import platform
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench.api import measure_api, render_api
from bench.freshness import measure_freshness, render_freshness, summary
from bench.funnel_memory import measure_funnel_memory, render_memory
from bench.ingest import IngestResult, measure_ingest
from bench.intent import measure_intent, render_intent
from bench.pipeline import PipelineResult, measure_pipeline
from bench.pixel import measure_pixel, render_pixel

# (events/s, funnel processes): one process per service, then the funnel scaled out.
# 2,000 events/s shows where between 1,000 (within the 1 s target here) and the target's
# 5,000 the p99 leaves it.
FRESHNESS_RUNS = ((1_000, 1), (2_000, 1), (5_000, 1), (5_000, 2))
FRESHNESS_SECONDS = 15.0
RESULTS = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    cpu = "unknown CPU"
    cpuinfo = Path("/proc/cpuinfo")
    if cpuinfo.exists():
        lines = cpuinfo.read_text().splitlines()
        names = [ln.split(":", 1)[1].strip() for ln in lines if ln.startswith("model name")]
        cpu = names[0] if names else cpu
    memory = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    python = f"Python {platform.python_version()}"
    return f"{os.cpu_count()} cores ({cpu}), {memory:.0f} GiB, {python}, {platform.system()}"


def row(*cells: object) -> str:
    return "| " + " | ".join(str(c) for c in cells) + " |"


def render(ingest: IngestResult, pipeline: PipelineResult) -> str:
    ms = "{:.1f} ms".format
    us = "{:,.0f} µs".format
    lines = [
        "# Benchmarks",
        "",
        f"Measured {datetime.now(UTC):%Y-%m-%d %H:%M} UTC on {machine()}.",
        "Command: `make bench` (`python -m bench`). Broker: embedded Tansu (in memory); the",
        "pipeline's database: PostgreSQL (throwaway cluster, fsync off). One process per service.",
        "",
        f"## Ingest: `POST /v1/batch`, batches of 100, {ingest.concurrency} concurrent senders",
        "",
        row("path", "events", "events/s", "batch p50", "batch p99", "CPU per event"),
        row("---", "---:", "---:", "---:", "---:", "---:"),
        row("bare aiokafka producer, acks=all (baseline)", f"{ingest.events:,}",
            f"{ingest.baseline_rate:,.0f}", ms(ingest.baseline_p50_ms), ms(ingest.baseline_p99_ms),
            us(ingest.baseline_cpu_us)),
        row("ingest over HTTP: validate, resolve, produce, wait for acks", f"{ingest.events:,}",
            f"{ingest.rate:,.0f}", ms(ingest.p50_ms), ms(ingest.p99_ms), us(ingest.cpu_us)),
        row("ingest's collect step alone (validate, resolve, map; no HTTP, no broker)",
            f"{ingest.events:,}", f"{1e6 / ingest.collect_cpu_us:,.0f}", "", "",
            us(ingest.collect_cpu_us)),
        "",
        f"Ratio ingest / bare producer: **{ingest.ratio:.2f}** (target, issue 3: 0.85).",
        "",
        "CPU per event is the producer's process (this one) and the ingest process; the",
        "collect step is timed in this process. Ingest does the producer's work (encode, send,",
        "wait for the acknowledgements) and, before it, collect's. Once both are CPU-bound, one",
        "ingest process reaches at most producer / (producer + collect) of the producer, with",
        f"HTTP for free: **{ingest.cpu_bound_ratio:.2f}** here. 0.85 would need collect to cost",
        "at most 0.18 of the producer's CPU per event.",
        "",
        "## Pipeline: the funnel consumer on PostgreSQL",
        "",
        row("path", "events", "events/s", "CPU per event"),
        row("---", "---:", "---:", "---:"),
        row("consume and discard (the broker's ceiling)", f"{pipeline.events:,}",
            f"{pipeline.baseline_rate:,.0f}", ""),
        row("funnel: pure core; state, offsets, applied ids, outbox in one transaction",
            f"{pipeline.events:,}", f"{pipeline.rate:,.0f}", us(pipeline.cpu_us_per_event)),
        row("the funnel's pure core alone (in-process: no decoding, no database, no broker)",
            f"{pipeline.events:,}", f"{pipeline.core_rate:,.0f}", us(pipeline.core_us_per_event)),
        "",
        f"Ratio funnel / consume-and-discard: **{pipeline.rate / pipeline.baseline_rate:.2f}** "
        f"({pipeline.accounts:,} accounts, batches of up to {pipeline.max_batch}); "
        "target, issue 5: 20,000 events/s per process, "
        f"{20_000 / pipeline.core_rate:.1f}x what the pure core alone reaches here.",
        "",
    ]  # fmt: skip
    return "\n".join(lines)


async def run() -> str:
    with tempfile.TemporaryDirectory(prefix="abm-bench-") as scratch:
        ingest = await measure_ingest(Path(scratch))
        print(
            f"ingest: {ingest.rate:,.0f} ev/s vs producer {ingest.baseline_rate:,.0f} ev/s",
            flush=True,
        )
        pixel = await measure_pixel(Path(scratch))
        print(f"pixel: {pixel.pixel.rate:,.0f} hits/s vs empty {pixel.empty.rate:,.0f}, "
              f"median ratio {pixel.ratio:.2f}", flush=True)  # fmt: skip
        pipeline = await measure_pipeline(Path(scratch))
        print(
            f"pipeline: {pipeline.rate:,.0f} ev/s vs discard {pipeline.baseline_rate:,.0f} ev/s",
            flush=True,
        )
        api = await measure_api(Path(scratch))
        print(f"api: {api.full.rate:,.0f} req/s vs empty {api.empty.rate:,.0f} req/s", flush=True)
        memory = await measure_funnel_memory(Path(scratch))
        print(f"funnel memory: {memory.database_per_account:,.0f} B per account", flush=True)
        freshness = []
        for rate, replicas in FRESHNESS_RUNS:
            run = measure_freshness(Path(scratch), rate, FRESHNESS_SECONDS, replicas)
            freshness.append(await run)
            print(summary(freshness[-1]), flush=True)
    return "\n".join(
        [render(ingest, pipeline), render_pixel(pixel), render_memory(memory),
         render_intent(measure_intent()), render_api(api), render_freshness(freshness)]
    )  # fmt: skip


def main() -> None:
    report = asyncio.run(run())
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text(report)
    print(report)
    sys.exit(0)


if __name__ == "__main__":
    main()
