"""`make run`'s path: `abm up --simulate` on the embedded defaults (Tansu, SQLite) shows
accounts in all six stages through the API, then stops cleanly on Ctrl-C, or when its
terminal closes (SIGHUP), leaving no process behind."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from pathlib import Path

import httpx
import pytest

from schemas.topics import EVENTS, FUNNEL_GROUP
from services.kit import db, migrate, offsets
from services.kit.broker import free_port
from tests.harness import wait_until_ready

pytestmark = pytest.mark.e2e

STAGES = ("target", "engaged", "opportunity", "won", "retention", "expansion")


@pytest.mark.parametrize("stop_signal", [signal.SIGINT, signal.SIGHUP], ids=["ctrl-c", "hangup"])
async def test_abm_up_moves_simulated_accounts_through_all_six_stages(
    tmp_path: Path, stop_signal: signal.Signals
) -> None:
    database_url = f"sqlite+aiosqlite:///{tmp_path / 'abm.db'}"
    await _left_by_an_earlier_run(database_url)
    api_port = free_port()
    env = {
        **os.environ,
        "ABM_DATABASE_URL": database_url,
        "ABM_STATE_DIR": str(tmp_path),
        "ABM_API_PORT": str(api_port),
        "ABM_INGEST_PORT": str(free_port()),
        "ABM_INTENT_METRICS_PORT": str(free_port()),
        "ABM_FUNNEL_METRICS_PORT": str(free_port()),
    }
    env.pop("ABM_KAFKA_BOOTSTRAP", None)
    with (tmp_path / "up.log").open("wb") as log:
        up = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "up", "--simulate", "50",
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    children: set[int] = set()
    try:
        counts = await wait_for_all_stages(f"http://127.0.0.1:{api_port}")
        assert all(counts[stage] > 0 for stage in STAGES), counts
        children = children_of(up.pid)
    finally:
        os.killpg(up.pid, stop_signal)  # as a terminal does: to `abm up` and its children
        code = await asyncio.wait_for(up.wait(), timeout=60)
    output = (tmp_path / "up.log").read_text()
    assert code == 0, output[-3000:]
    assert "dev API token: dev-api-token" in output and "funnel now:" in output
    assert "restarting" not in output  # a child the signal stopped is not restarted
    assert f"{EVENTS.partitions} stored offsets forgotten" in output
    # A quiet stop: the broker outlives its clients' shutdown, nothing is left unclosed.
    assert "Traceback" not in output and " ERROR " not in output, output[-3000:]
    assert len(children) >= 5, "broker and four services expected"  # + the simulator
    assert not alive(children), "children outlived `abm up`"


async def _left_by_an_earlier_run(database_url: str) -> None:
    """A database that outlived its embedded broker: the funnel had read 500 records of
    every partition, of logs the new broker does not have."""
    await asyncio.to_thread(migrate.upgrade, database_url)
    engine = db.create_engine(url=database_url)
    try:
        async with db.create_sessionmaker(engine)() as session, session.begin():
            for partition in range(EVENTS.partitions):
                key = (EVENTS.name, partition)
                await offsets.advance_offset(session, FUNNEL_GROUP, key, None, 500)
    finally:
        await engine.dispose()


def alive(pids: set[int]) -> set[int]:
    return {pid for pid in pids if Path(f"/proc/{pid}").exists()}


def children_of(pid: int) -> set[int]:
    found = set()
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.add(int(stat.parent.name))
    return found


async def wait_for_all_stages(api: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    headers = {"Authorization": "Bearer dev-api-token"}
    async with httpx.AsyncClient(timeout=2) as client:
        for _ in range(240):
            try:
                response = await client.get(f"{api}/v1/funnel", headers=headers)
            except httpx.HTTPError:
                response = None
            if response is not None and response.status_code == 200:
                counts = {s["stage"]: s["accounts"] for s in response.json()["stages"]}
                if all(counts.get(stage) for stage in STAGES):
                    return counts
            await asyncio.sleep(0.5)
    raise AssertionError(f"not every stage reached within two minutes: {counts}")


async def test_a_killed_abm_up_leaves_no_process_behind(tmp_path: Path) -> None:
    """SIGKILL runs no handler: the kernel stops the broker and the services (Linux)."""
    if not sys.platform.startswith("linux"):
        pytest.skip("PR_SET_PDEATHSIG is Linux")
    api_port = free_port()
    env = {
        **os.environ,
        "ABM_DATABASE_URL": f"sqlite+aiosqlite:///{tmp_path / 'abm.db'}",
        "ABM_STATE_DIR": str(tmp_path),
        "ABM_API_PORT": str(api_port),
        "ABM_INGEST_PORT": str(free_port()),
        "ABM_INTENT_METRICS_PORT": str(free_port()),
        "ABM_FUNNEL_METRICS_PORT": str(free_port()),
        "ABM_STITCH_METRICS_PORT": str(free_port()),
    }
    env.pop("ABM_KAFKA_BOOTSTRAP", None)
    with (tmp_path / "up.log").open("wb") as log:
        up = await asyncio.create_subprocess_exec(
            sys.executable, "-m", "services.cli", "up",
            env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
        )  # fmt: skip
    children: set[int] = set()
    try:
        await wait_until_ready(f"http://127.0.0.1:{api_port}", timeout_s=90)
        children = children_of(up.pid)
        assert len(children) >= 6, "broker and five services expected"
        os.kill(up.pid, signal.SIGKILL)
        await up.wait()
        for _ in range(300):
            if not running(children):
                break
            await asyncio.sleep(0.1)
        assert not running(children), "children outlived a killed `abm up`"
    finally:
        for pid in running(children):
            os.kill(pid, signal.SIGKILL)
        if up.returncode is None:
            os.killpg(up.pid, signal.SIGKILL)


def running(pids: set[int]) -> set[int]:
    """Alive and not zombies (an orphan's zombie waits for whoever reaps it)."""
    found = set()
    for pid in pids:
        try:
            state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        except OSError:
            continue
        if state != "Z":
            found.add(pid)
    return found
