"""Load from wrk against one server process: requests/s, latency percentiles, errors, and
the CPU the server spent per request (what a request costs, whatever else runs)."""

from __future__ import annotations

import asyncio
import os
import re
import statistics
import subprocess
import sys
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path

from services.kit.broker import free_port
from tests.harness import wait_until_ready

CONNECTIONS = 32
SECONDS = 10
# Appended to every request script: one parseable line with the run's figures.
REPORT_LUA = """
done = function(summary, latency, requests)
  io.write(string.format("RESULT %d %f %f %f %d %d\\n", summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1000, latency:percentile(99) / 1000,
    summary.errors.status + summary.errors.connect + summary.errors.read, summary.bytes))
end
"""


@dataclass(frozen=True)
class Load:
    requests: int
    seconds: float
    p50_ms: float
    p99_ms: float
    errors: int
    cpu_s: float
    """CPU time the server process used during the run (user + system)."""
    bytes_read: int = 0
    """Bytes the clients received (headers and bodies)."""

    @property
    def rate(self) -> float:
        return self.requests / self.seconds

    @property
    def bytes_per_response(self) -> float:
        return self.bytes_read / max(self.requests, 1)

    @property
    def cpu_us(self) -> float:
        """The server's CPU per request: what a request costs, whatever else runs."""
        return self.cpu_s / max(self.requests, 1) * 1e6


def run_wrk(
    base: str, request_lua: str, scratch: Path, name: str, pid: int, seconds: int = SECONDS
) -> Load:
    """wrk with ``request_lua`` (defining ``request``) for ``seconds`` over CONNECTIONS."""
    script = scratch / f"{name}.lua"
    script.write_text(request_lua + REPORT_LUA)
    cpu_before = cpu_seconds(pid)
    output = subprocess.run(
        ["wrk", "-t2", f"-c{CONNECTIONS}", f"-d{seconds}s", "-s", str(script), base],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    match = re.search(r"RESULT (\d+) ([\d.]+) ([\d.]+) ([\d.]+) (\d+) (\d+)", output)
    if match is None:
        raise RuntimeError(f"wrk printed no result: {output[-500:]}")
    requests, elapsed, p50, p99, errors, received = match.groups()
    cpu = cpu_seconds(pid) - cpu_before
    figures = (float(elapsed), float(p50), float(p99), int(errors), cpu, int(received))
    return Load(int(requests), *figures)


def combined(loads: list[Load]) -> Load:
    """Several runs of the same load as one: their sums, and the median of their latency
    percentiles (percentiles do not add up)."""
    return Load(
        requests=sum(load.requests for load in loads),
        seconds=sum(load.seconds for load in loads),
        p50_ms=statistics.median(load.p50_ms for load in loads),
        p99_ms=statistics.median(load.p99_ms for load in loads),
        errors=sum(load.errors for load in loads),
        cpu_s=sum(load.cpu_s for load in loads),
        bytes_read=sum(load.bytes_read for load in loads),
    )


def cpu_seconds(pid: int) -> float:
    """User + system CPU of a process so far (fields 14 and 15 of /proc/<pid>/stat)."""
    fields = _stat_fields(pid)
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_cpu_seconds(pid: int) -> float:
    """CPU of a process and of its children, live and exited (e.g. a postmaster and its
    backends): its own, its reaped children's (fields 16 and 17), each live child's."""
    ticks = sum(int(f) for f in _stat_fields(pid)[11:15])
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            child = _stat_fields(int(entry.name))
        except OSError:
            continue  # exited meanwhile
        if int(child[1]) == pid:
            ticks += int(child[11]) + int(child[12])
    return ticks / os.sysconf("SC_CLK_TCK")


def _stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name (which may hold spaces), from field 3 on."""
    return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()


@asynccontextmanager
async def empty_app(scratch: Path) -> AsyncIterator[tuple[str, int]]:
    """The baseline server (``bench/empty_app.py``: same uvicorn settings as ours, one empty
    route ``/empty/{anything}``): its base URL and process id."""
    port = free_port()
    env = {**os.environ, "ABM_EMPTY_PORT": str(port)}
    with (scratch / "empty.log").open("wb") as log:
        server = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "bench.empty_app", env=env, stdout=log, stderr=log
        )
    try:
        base = f"http://127.0.0.1:{port}"
        await wait_until_ready(base)
        yield base, server.pid
    finally:
        server.terminate()
        await server.wait()
