"""Pixel hits against an empty FastAPI endpoint under the same server settings: wrk, 32
connections, each hit a page view for one of 5,000 accounts and 50,000 visitors, answered
only once the broker acknowledged it (acks=all), like every ingest endpoint."""

from __future__ import annotations

import asyncio
import statistics
from dataclasses import dataclass
from pathlib import Path

from bench.ingest import ingest_environment, serving_ingest
from bench.wrk import CONNECTIONS, Load, combined, empty_app, run_wrk

KEY = "bench-pixel-key"
REQUEST_LUA = """
math.randomseed(11)
request = function()
  local n = math.random(50000)
  return wrk.format("GET", "%(path)s" .. "k=%(key)s&aid=v" .. n .. "&gid=account-" .. (n %% 5000)
    .. ".com&url=https%%3A%%2F%%2Fvendor.example%%2Fpricing&title=Pricing")
end
"""


# Rounds of pixel and empty endpoint in turn, both servers up throughout: the machine's
# speed drifts (other tenants), by 20% between two runs minutes apart; a ratio taken
# within each round, and the median of those, holds steadier than one long run of each.
ROUNDS = 3
ROUND_SECONDS = 5
WARM_UP_SECONDS = 3


@dataclass(frozen=True)
class PixelResult:
    pixel: Load  # every round's, together
    empty: Load
    ratios: tuple[float, ...]  # pixel hits/s over the empty endpoint's, per round

    @property
    def ratio(self) -> float:
        return statistics.median(self.ratios)


async def measure_pixel(scratch: Path) -> PixelResult:
    async with (
        ingest_environment(scratch, KEY) as (bootstrap, url),
        serving_ingest(bootstrap, url, scratch) as (base, pid),
        empty_app(scratch) as (empty_base, empty_pid),
    ):
        pixels: list[Load] = []
        empties: list[Load] = []
        empty_script = REQUEST_LUA % {"path": "/empty/p.gif?", "key": KEY}
        pixel_script = REQUEST_LUA % {"path": "/p.gif?", "key": KEY}
        for n in range(-1, ROUNDS):  # round -1 warms both up (caches, connections): not kept
            seconds = ROUND_SECONDS if n >= 0 else WARM_UP_SECONDS
            empty = run_wrk(empty_base, empty_script, scratch, f"empty{n}", empty_pid, seconds)
            pixel = run_wrk(base, pixel_script, scratch, f"pixel{n}", pid, seconds)
            if n >= 0:
                empties.append(empty)
                pixels.append(pixel)
    ratios = tuple(p.rate / e.rate for p, e in zip(pixels, empties, strict=True))
    return PixelResult(pixel=combined(pixels), empty=combined(empties), ratios=ratios)


def render_pixel(result: PixelResult) -> str:
    rows = [
        ("empty FastAPI endpoint, same server settings (baseline)", result.empty),
        ("`GET /p.gif`: validate, resolve, produce, wait for the ack", result.pixel),
    ]
    lines = [
        f"## Ingest: pixel hits, {CONNECTIONS} connections (wrk)",
        "",
        "| path | hits/s | p50 | p99 | errors | server CPU per hit |",
        "|---|---:|---:|---:|---:|---:|",
        *(
            f"| {label} | {h.rate:,.0f} | {h.p50_ms:.1f} ms | {h.p99_ms:.1f} ms | {h.errors} "
            f"| {h.cpu_us:,.0f} µs |"
            for label, h in rows
        ),
        "",
        f"Ratio pixel / empty endpoint: **{result.ratio:.2f}** (target, issue 3: 0.75), the "
        f"median of {len(result.ratios)} rounds of {ROUND_SECONDS} s each, taken in turn "
        f"({', '.join(f'{r:.2f}' for r in result.ratios)}).",
        "",
    ]
    return "\n".join(lines)


if __name__ == "__main__":
    import tempfile

    with tempfile.TemporaryDirectory(prefix="abm-pixel-") as directory:
        print(render_pixel(asyncio.run(measure_pixel(Path(directory)))))
