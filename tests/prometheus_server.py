"""A real Prometheus (Debian's ``prometheus`` package) for the tests: scrapes 127.0.0.1
targets every second, loads the alert rules, talks to nothing else (no remote write, no
Alertmanager, no service discovery)."""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import time
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from services.kit.broker import free_port


def prometheus_binary() -> str:
    found = shutil.which("prometheus")
    if found is None:
        raise RuntimeError("prometheus not found; `make test` installs Debian's package")
    return found


def scrape_config(targets: Mapping[str, str], rule_files: list[Path]) -> dict[str, Any]:
    """``targets``: job name -> host:port on 127.0.0.1."""
    return {
        "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
        "rule_files": [str(path) for path in rule_files],
        "scrape_configs": [
            {"job_name": job, "static_configs": [{"targets": [target]}]}
            for job, target in targets.items()
        ],
    }


@dataclass
class PrometheusServer:
    process: subprocess.Popen[bytes]
    url: str

    async def query(self, expr: str) -> list[dict[str, Any]]:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{self.url}/api/v1/query", params={"query": expr})
        response.raise_for_status()
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    async def metadata_names(self) -> set[str]:
        async with httpx.AsyncClient(timeout=5) as client:
            response = await client.get(f"{self.url}/api/v1/metadata")
        response.raise_for_status()
        return set(response.json()["data"])

    async def wait_for(self, expr: str, timeout_s: float = 20.0) -> list[dict[str, Any]]:
        """Until the instant query returns at least one series."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if result := await self.query(expr):
                return result
            await asyncio.sleep(0.25)
        raise AssertionError(f"Prometheus never answered {expr!r} with a series")

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()


async def start_prometheus(root: Path, config: dict[str, Any]) -> PrometheusServer:
    config_file = root / "prometheus.yml"
    config_file.write_text(yaml.safe_dump(config))
    port = free_port()
    log = (root / "prometheus.log").open("wb")
    process = subprocess.Popen(  # noqa: ASYNC220 - returns at once, like the harness's
        [prometheus_binary(), f"--config.file={config_file}",
         f"--storage.tsdb.path={root / 'tsdb'}", f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
    )  # fmt: skip
    server = PrometheusServer(process, f"http://127.0.0.1:{port}")
    await _wait_ready(server)
    return server


async def _wait_ready(server: PrometheusServer, timeout_s: float = 15.0) -> None:
    deadline = time.monotonic() + timeout_s
    async with httpx.AsyncClient(timeout=1) as client:
        while time.monotonic() < deadline:
            if server.process.poll() is not None:
                raise RuntimeError("prometheus exited; see prometheus.log")
            try:
                if (await client.get(f"{server.url}/-/ready")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise TimeoutError("prometheus never became ready")
