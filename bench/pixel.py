"""Pixel hits against an empty FastAPI endpoint under the same server settings: wrk, 32
connections, each hit a page view for one of 5,000 accounts and 50,000 visitors, answered
only once the broker acknowledged it (acks=all), like every ingest endpoint."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from pathlib import Path

from bench.ingest import ingest_environment, serving_ingest
from bench.wrk import CONNECTIONS, SECONDS, Load, empty_app, run_wrk

KEY = "bench-pixel-key"
REQUEST_LUA = """
math.randomseed(11)
request = function()
  local n = math.random(50000)
  return wrk.format("GET", "%(path)s" .. "k=%(key)s&aid=v" .. n .. "&gid=account-" .. (n %% 5000)
    .. ".com&url=https%%3A%%2F%%2Fvendor.example%%2Fpricing&title=Pricing")
end
"""


@dataclass(frozen=True)
class PixelResult:
    pixel: Load
    empty: Load


async def measure_pixel(scratch: Path) -> PixelResult:
    async with (
        ingest_environment(scratch, KEY) as (bootstrap, url),
        serving_ingest(bootstrap, url, scratch) as (base, pid),
    ):
        pixel = run_wrk(base, REQUEST_LUA % {"path": "/p.gif?", "key": KEY}, scratch, "pixel", pid)
    async with empty_app(scratch) as (base, pid):
        script = REQUEST_LUA % {"path": "/empty/p.gif?", "key": KEY}
        empty = run_wrk(base, script, scratch, "pixel-empty", pid)
    return PixelResult(pixel=pixel, empty=empty)


def render_pixel(result: PixelResult) -> str:
    rows = [
        ("empty FastAPI endpoint, same server settings (baseline)", result.empty),
        ("`GET /p.gif`: validate, resolve, produce, wait for the ack", result.pixel),
    ]
    lines = [
        f"## Ingest: pixel hits, {CONNECTIONS} connections (wrk), {SECONDS} s",
        "",
        "| path | hits/s | p50 | p99 | errors | server CPU per hit |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {label} | {h.rate:,.0f} | {h.p50_ms:.1f} ms | {h.p99_ms:.1f} ms | {h.errors} "
            f"| {h.cpu_us:,.0f} µs |"
            for label, h in rows
        ),
        "",
        f"Ratio pixel / empty endpoint: **{result.pixel.rate / result.empty.rate:.2f}** "
        "(target, issue 3: 0.75).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="abm-pixel-") as directory:
        print(render_pixel(asyncio.run(measure_pixel(Path(directory)))))
