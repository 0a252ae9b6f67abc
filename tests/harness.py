"""Real parts for the integration tests: a throwaway PostgreSQL cluster, Tansu brokers and
the services as child processes, exactly as `abm up` runs them."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from sqlalchemy import Table, func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from schemas import topics
from schemas.envelope import Envelope
from schemas.events import ClockTicked, encode_event
from services.kit import db
from services.kit.batches import BatchHandler
from services.kit.broker import free_port
from services.kit.consumer import ConsumerShell, ShellOptions
from services.kit.settings import CommonSettings
from services.kit.tables import consumer_offsets, metadata

PG_VERSIONS = ("17", "16", "15")


def pg_bindir() -> Path:
    for version in PG_VERSIONS:
        candidate = Path(f"/usr/lib/postgresql/{version}/bin")
        if (candidate / "initdb").exists():
            return candidate
    raise RuntimeError("PostgreSQL server binaries not found; `make test` installs them")


@dataclass
class PostgresCluster:
    """A throwaway cluster, owned by the `postgres` user when we run as root (initdb
    refuses root). Durability is off: these tests crash consumers, not the database."""

    root: Path
    port: int
    bindir: Path = field(default_factory=pg_bindir)

    @property
    def admin_dsn(self) -> str:
        return f"postgresql://postgres@127.0.0.1:{self.port}/postgres"

    def url(self, database: str) -> str:
        return f"postgresql+asyncpg://postgres@127.0.0.1:{self.port}/{database}"

    def postmaster_pid(self) -> int:
        """The server's process id (the first line of ``postmaster.pid``)."""
        return int((self.root / "data" / "postmaster.pid").read_text().split()[0])

    def start(self) -> None:
        data = self.root / "data"
        self._run([str(self.bindir / "initdb"), "-D", str(data), "-U", "postgres",
                   "--auth=trust", "-E", "UTF8", "--no-sync"])  # fmt: skip
        options = (
            f"-p {self.port} -k {self.root} -c listen_addresses=127.0.0.1 -c fsync=off "
            "-c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        )
        self._run([str(self.bindir / "pg_ctl"), "-D", str(data), "-o", options,
                   "-l", str(self.root / "pg.log"), "-w", "start"])  # fmt: skip

    def restart(self) -> None:
        """Stop the server as an operator would (every session is ended and closed), then
        start it again with its data and options (its output to the log, as at start: a
        server holding our pipes would keep ``_run`` waiting)."""
        self._run([str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "fast",
                   "-l", str(self.root / "pg.log"), "-w", "restart"])  # fmt: skip

    def stop(self) -> None:
        self._run(
            [str(self.bindir / "pg_ctl"), "-D", str(self.root / "data"), "-m", "immediate", "stop"],
            check=False,
        )
        shutil.rmtree(self.root, ignore_errors=True)

    async def create_database(self) -> str:
        name = f"t_{uuid.uuid4().hex[:12]}"
        connection = await asyncpg.connect(self.admin_dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        return name

    def _run(self, command: list[str], check: bool = True) -> None:
        owner = {"user": "postgres", "group": "postgres"} if os.geteuid() == 0 else {}
        result = subprocess.run(command, check=False, capture_output=True, **owner)  # type: ignore[call-overload]
        if check and result.returncode != 0:
            raise RuntimeError(f"{command[0]} failed: {result.stderr.decode()[-2000:]}")


def start_postgres() -> PostgresCluster:
    root = Path(tempfile.mkdtemp(prefix="abm-pg-"))
    if os.geteuid() == 0:
        shutil.chown(root, "postgres", "postgres")
    cluster = PostgresCluster(root=root, port=free_port())
    cluster.start()
    return cluster


@dataclass
class ServiceProcess:
    name: str
    process: subprocess.Popen[bytes]
    log: Path

    def kill(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGKILL)
            self.process.wait()

    def terminate(self, timeout: float = 20.0) -> int:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.process.returncode


@dataclass
class Stack:
    """Environment shared by the service processes of one test."""

    env: dict[str, str]
    logs: Path
    processes: list[ServiceProcess] = field(default_factory=list)

    def start(self, name: str) -> ServiceProcess:
        log = self.logs / f"{name}-{len(self.processes)}.log"
        with log.open("wb") as output:
            process = subprocess.Popen(
                [sys.executable, "-m", "services.cli", name],
                env=self.env,
                stdout=output,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
            )
        service = ServiceProcess(name, process, log)
        self.processes.append(service)
        return service

    def url(self, name: str) -> str:
        port = self.env[f"ABM_{name.upper()}_PORT"]
        return f"http://127.0.0.1:{port}"

    def stop_all(self) -> None:
        for service in self.processes:
            service.terminate()


@contextmanager
def stack(database_url: str, bootstrap: str, logs: Path) -> Iterator[Stack]:
    env = dict(os.environ)
    env.update(
        {
            "ABM_DATABASE_URL": database_url,
            "ABM_KAFKA_BOOTSTRAP": bootstrap,
            "ABM_API_PORT": str(free_port()),
            "ABM_INGEST_PORT": str(free_port()),
            "ABM_INTENT_METRICS_PORT": str(free_port()),
            "ABM_FUNNEL_METRICS_PORT": str(free_port()),
            "ABM_STITCH_METRICS_PORT": str(free_port()),
            "ABM_LOG_LEVEL": "INFO",
            # Test streams are dated in the past: a tick at the wall clock would expire
            # every window at once. Tests that exercise ticks turn them on.
            "ABM_FUNNEL_TICK_INTERVAL_S": "0",
            # a killed consumer's partitions move on quickly
            "ABM_KAFKA_SESSION_TIMEOUT_MS": "2000",
            "ABM_KAFKA_HEARTBEAT_INTERVAL_MS": "300",
        }
    )
    running = Stack(env=env, logs=logs)
    try:
        yield running
    finally:
        running.stop_all()


async def wait_until_listening(port: int, timeout_s: float = 10.0) -> None:
    """A TCP connect to 127.0.0.1:port succeeds (for servers without /readyz)."""
    for _ in range(int(timeout_s / 0.02)):
        try:
            _reader, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.02)
            continue
        writer.close()
        await writer.wait_closed()
        return
    raise TimeoutError(f"nothing listens on {port}")


async def wait_until_ready(base_url: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=2) as client:
        while time.monotonic() < deadline:
            try:
                if (await client.get(f"{base_url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.2)
    raise TimeoutError(f"{base_url} never became ready")


# --- broker and progress helpers shared by the integration tests and the benchmarks ---
async def produce(
    bootstrap: str, events: Sequence[Envelope], topic: str = topics.EVENTS.name
) -> None:
    """Produce ``events`` onto ``topic``, keyed by account (a ``ClockTicked`` onto its own
    partition, as the funnel's clock sends it)."""
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, acks="all", linger_ms=5)
    await producer.start()
    try:
        pending = [
            await producer.send(topic, encode_event(e), partition=e.partition)
            if isinstance(e, ClockTicked)
            else await producer.send(topic, encode_event(e), key=e.account_key.encode())
            for e in events
        ]
        await asyncio.gather(*pending)
    finally:
        await producer.stop()


async def stored_progress(url: str, topic: str = topics.EVENTS.name) -> int:
    """Sum of the funnel's stored next offsets on ``topic``: its records consumed."""
    engine = db.create_engine(url=url)
    try:
        return await _progress(engine, topic=topic)
    finally:
        await engine.dispose()


async def _progress(
    engine: Any, group: str = topics.FUNNEL_GROUP, topic: str = topics.EVENTS.name
) -> int:
    async with engine.connect() as connection:
        total = await connection.scalar(
            select(func.coalesce(func.sum(consumer_offsets.c.next_offset), 0))
            .where(consumer_offsets.c.group_id == group)
            .where(consumer_offsets.c.topic == topic)
        )
    return int(total or 0)


async def wait_for_progress(
    url: str,
    beyond: int,
    timeout_s: float = 60,
    group: str = topics.FUNNEL_GROUP,
    topic: str = topics.EVENTS.name,
) -> int:
    """Poll (one engine, every 50 ms) until ``group`` consumed more than ``beyond`` records
    of ``topic``."""
    engine = db.create_engine(url=url)
    try:
        for _ in range(int(timeout_s / 0.05)):
            progress = await _progress(engine, group, topic)
            if progress > beyond:
                return progress
            await asyncio.sleep(0.05)
    finally:
        await engine.dispose()
    raise AssertionError(f"no progress beyond {beyond} offsets")


# Columns whose values depend on wall-clock time or on commit interleaving, not on the
# events: a random token per state write, the change log's commit order, and when a row
# was written.
VOLATILE_COLUMNS = {
    "accounts": {"revision"},
    "account_changes": {"seq", "txid"},
    "processed_events": {"processed_at"},
    "consumer_offsets": {"updated_at"},
}


async def table_rows(url: str) -> dict[str, list[dict[str, Any]]]:
    """Every table's rows, the ``VOLATILE_COLUMNS`` left out, in a canonical order: for
    comparing what two runs wrote."""
    engine = db.create_engine(url=url)
    contents: dict[str, list[dict[str, Any]]] = {}
    try:
        async with engine.connect() as connection:
            for table in metadata.sorted_tables:
                skip = VOLATILE_COLUMNS.get(table.name, set())
                columns = [c for c in table.columns if c.name not in skip]
                rows = (await connection.execute(select(*columns))).mappings().all()
                contents[table.name] = sorted((dict(row) for row in rows), key=_canonical_key)
    finally:
        await engine.dispose()
    return contents


def canonical_rows(table: Table, rows: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """``rows`` as ``table_rows`` reads them back from ``table``."""
    skip = VOLATILE_COLUMNS.get(table.name, set())
    names = [c.name for c in table.columns if c.name not in skip]
    return sorted(({name: row[name] for name in names} for row in rows), key=_canonical_key)


def _canonical_key(row: Mapping[str, Any]) -> str:
    return repr(tuple(row.values()))


async def consume_all(bootstrap: str, topic: str, at_least: int) -> list[Any]:
    """Every record of a topic: read until at least ``at_least`` and a poll comes back empty."""
    consumer = AIOKafkaConsumer(topic, bootstrap_servers=bootstrap, auto_offset_reset="earliest")
    await consumer.start()
    records: list[Any] = []
    try:
        for _ in range(300):
            batch = await consumer.getmany(timeout_ms=200)
            records += [m for ms in batch.values() for m in ms]
            if len(records) >= at_least and not batch:
                break
    finally:
        await consumer.stop()
    return records


def funnel_member(
    database_url: str, bootstrap: str, handler: BatchHandler, options: ShellOptions | None = None
) -> tuple[ConsumerShell, AsyncEngine]:
    """A member of the funnel's consumer group in this process, with ``handler``, and its
    engine (the test disposes of it). A short session timeout: partitions move quickly."""
    engine = db.create_engine(url=database_url)
    settings = CommonSettings(kafka_bootstrap=bootstrap, database_url=database_url,
                              kafka_session_timeout_ms=2000)  # fmt: skip
    shell = ConsumerShell(settings=settings, group_id=topics.FUNNEL_GROUP,
                          topic_names=(topics.EVENTS.name, topics.SURGES.name), handler=handler,
                          sessionmaker=db.create_sessionmaker(engine), options=options)  # fmt: skip
    return shell, engine
