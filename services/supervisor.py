"""`abm up`: everything on the embedded defaults, as child processes of one command.

Starts the Tansu broker (unless ``ABM_KAFKA_BOOTSTRAP`` names a cluster), creates the
topics, migrates the database, seeds the development credentials, runs the five services,
restarts any that dies, and stops all of them on Ctrl-C, SIGTERM or SIGHUP; on Linux the
kernel stops them if `abm up` itself is killed (SIGKILL).
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
from pydantic import Field

from services.kit import db, kafka, migrate, offsets
from services.kit.broker import start_broker
from services.kit.credentials import seed_dev_credentials
from services.kit.logging import configure_logging
from services.kit.orphans import terminated_with_parent
from services.kit.settings import CommonSettings

log = logging.getLogger("abm.up")

SERVICES = ("ingest", "intent", "funnel", "stitch", "api")
SIMULATION_RATE = 150  # messages/s: 50 accounts' history (~3,000 messages) in about 20 s


class UpSettings(CommonSettings):
    kafka_bootstrap: str = Field(default="", description="Empty: start the embedded broker.")
    api_port: int = 8000
    ingest_port: int = 8001
    intent_metrics_port: int = 8002
    funnel_metrics_port: int = 8003
    stitch_metrics_port: int = 8004
    state_dir: Path = Path("var")
    stop_timeout_s: float = 15.0


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    started: float


def up(settings: UpSettings, simulate_accounts: int = 0) -> int:
    configure_logging(settings.log_level, settings.log_json)
    settings.state_dir.mkdir(parents=True, exist_ok=True)
    broker = None
    bootstrap = settings.kafka_bootstrap
    if not bootstrap:
        # Ctrl-C reaches the services at once; the broker must outlive their shutdown.
        broker = start_broker(
            log_file=settings.state_dir / "tansu.log", own_session=True, bound_to_parent=True
        )
        bootstrap = broker.bootstrap
        log.info("embedded broker (Tansu) on %s, data in memory", bootstrap)
    try:
        asyncio.run(_prepare(settings, bootstrap, new_broker=broker is not None))
        children = {name: _spawn(name, settings, bootstrap) for name in SERVICES}
        _announce(settings, bootstrap)
        return _supervise(children, settings, bootstrap, simulate_accounts)
    finally:
        if broker is not None:
            broker.stop()


async def _prepare(settings: UpSettings, bootstrap: str, new_broker: bool) -> None:
    await kafka.wait_for_broker(bootstrap)
    created = await kafka.ensure_topics(bootstrap)
    log.info("topics ready (%d created)", len(created))
    await asyncio.to_thread(migrate.upgrade, settings.database_url)
    engine = db.create_engine(url=settings.database_url)
    try:
        async with db.create_sessionmaker(engine)() as session, session.begin():
            await seed_dev_credentials(
                session,
                settings.dev_write_key.get_secret_value(),
                settings.dev_api_token.get_secret_value(),
            )
            # The embedded broker starts empty: offsets stored by an earlier run point
            # into logs it no longer has (consumers waiting there would skip records).
            if new_broker and (forgotten := await offsets.forget_all_offsets(session)):
                log.info(
                    "the database keeps the state of an earlier run; the embedded broker kept "
                    "none of its events: %d stored offsets forgotten, topics read from their "
                    "start",
                    forgotten,
                )
    finally:
        await engine.dispose()


def _child_env(settings: UpSettings, bootstrap: str) -> dict[str, str]:
    env = dict(os.environ)
    env.update(
        {
            "ABM_KAFKA_BOOTSTRAP": bootstrap,
            "ABM_DATABASE_URL": settings.database_url,
            "ABM_DEV_MODE": "true",
            "ABM_API_PORT": str(settings.api_port),
            "ABM_INGEST_PORT": str(settings.ingest_port),
            "ABM_INTENT_METRICS_PORT": str(settings.intent_metrics_port),
            "ABM_FUNNEL_METRICS_PORT": str(settings.funnel_metrics_port),
            "ABM_STITCH_METRICS_PORT": str(settings.stitch_metrics_port),
        }
    )
    return env


def _spawn(name: str, settings: UpSettings, bootstrap: str) -> Child:
    process = subprocess.Popen(
        [sys.executable, "-m", "services.cli", name],
        env=_child_env(settings, bootstrap),
        # Even a SIGKILLed `abm up` leaves none behind; it runs no thread (see orphans).
        preexec_fn=terminated_with_parent(),  # noqa: PLW1509
    )
    return Child(name, process, time.monotonic())


def _announce(settings: UpSettings, bootstrap: str) -> None:
    print(
        "\nabm-stream is starting:\n"
        f"  API     http://127.0.0.1:{settings.api_port}  (docs: /docs)\n"
        f"  ingest  http://127.0.0.1:{settings.ingest_port}  (POST /v1/batch, GET /p.gif)\n"
        f"  metrics http://127.0.0.1:{settings.intent_metrics_port}/metrics (intent), "
        f"http://127.0.0.1:{settings.funnel_metrics_port}/metrics (funnel), "
        f"http://127.0.0.1:{settings.stitch_metrics_port}/metrics (stitch)\n"
        f"  broker  {bootstrap}   database {settings.database_url}\n"
        f"  dev write key: {settings.dev_write_key.get_secret_value()}   "
        f"dev API token: {settings.dev_api_token.get_secret_value()}\n"
        "  Ctrl-C stops everything.\n",
        flush=True,
    )


def _supervise(
    children: dict[str, Child], settings: UpSettings, bootstrap: str, simulate_accounts: int
) -> int:
    stopping = False

    def request_stop(_signum: int, _frame: object) -> None:
        nonlocal stopping
        stopping = True

    # SIGHUP too (the terminal closed): the broker, in its own session, does not get it,
    # and is stopped only by the ``finally`` of ``up``.
    for stop_signal in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(stop_signal, request_stop)
    simulation = _start_simulation(settings, simulate_accounts) if simulate_accounts else None
    watcher = FunnelWatcher(f"http://127.0.0.1:{settings.api_port}", settings)
    try:
        while not stopping:
            time.sleep(0.5)
            watcher.report()
            for name, child in list(children.items()):
                # Ctrl-C reaches the children too (one process group): one that exited
                # because of it is not restarted.
                if child.process.poll() is not None and not stopping:
                    log.warning("%s exited with %s; restarting", name, child.process.returncode)
                    children[name] = _spawn(name, settings, bootstrap)
    finally:
        for process in [c.process for c in children.values()] + (
            [simulation] if simulation else []
        ):
            _stop(process, settings.stop_timeout_s)
    return 0


def _start_simulation(settings: UpSettings, accounts: int) -> subprocess.Popen[bytes] | None:
    ingest = f"http://127.0.0.1:{settings.ingest_port}"
    if not _wait_ready(ingest, timeout_s=60):
        log.error("ingest never became ready; not simulating")
        return None
    # Paced so that a newcomer watches the accounts move, rather than seeing the end state.
    return subprocess.Popen(
        [sys.executable, "-m", "services.cli", "simulate", "--ingest-url", ingest,
         "--write-key", settings.dev_write_key.get_secret_value(), "--accounts", str(accounts),
         "--rate", str(SIMULATION_RATE)],
        preexec_fn=terminated_with_parent(),  # noqa: PLW1509
    )  # fmt: skip


class FunnelWatcher:
    """Prints the funnel from the API every few seconds when it changed: proof of life."""

    def __init__(self, api_url: str, settings: UpSettings, every_s: float = 3.0) -> None:
        self._url = f"{api_url}/v1/funnel"
        self._token = settings.dev_api_token.get_secret_value()
        self._every = every_s
        self._next = time.monotonic() + every_s
        self._last = ""

    def report(self) -> None:
        if time.monotonic() < self._next:
            return
        self._next = time.monotonic() + self._every
        try:
            response = httpx.get(
                self._url, headers={"Authorization": f"Bearer {self._token}"}, timeout=1
            )
        except httpx.HTTPError:
            return
        if response.status_code != 200:
            return
        line = "  ".join(f"{s['stage']} {s['accounts']}" for s in response.json()["stages"])
        if line != self._last:
            self._last = line
            print(f"funnel now: {line}", flush=True)


def _wait_ready(base_url: str, timeout_s: float) -> bool:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base_url}/readyz", timeout=1).status_code == 200:
                return True
        except httpx.HTTPError:
            pass
        time.sleep(0.3)
    return False


def _stop(process: subprocess.Popen[bytes], timeout_s: float) -> None:
    if process.poll() is not None:
        return
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout_s)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait()
