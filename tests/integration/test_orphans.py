"""A child started with ``terminated_with_parent`` does not outlive a parent killed with
SIGKILL; without it, it does (the control that shows the test can fail)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(not sys.platform.startswith("linux"), reason="PR_SET_PDEATHSIG is Linux"),
]

ROOT = Path(__file__).resolve().parents[2]
PARENT = """
import subprocess, sys, time
from services.kit.orphans import terminated_with_parent
arm = terminated_with_parent() if sys.argv[1] == "bound" else None
child = subprocess.Popen(["sleep", "60"], preexec_fn=arm)
print(child.pid, flush=True)
time.sleep(60)
"""


def running(pid: int) -> bool:
    """Alive and not a zombie (an orphan's zombie waits for whoever reaps it)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state != "Z"


@pytest.mark.parametrize(("mode", "outlives"), [("bound", False), ("unbound", True)])
def test_a_bound_child_is_stopped_when_its_parent_is_killed(mode: str, outlives: bool) -> None:
    parent = subprocess.Popen(
        [sys.executable, "-c", PARENT, mode], stdout=subprocess.PIPE, text=True, cwd=ROOT
    )
    assert parent.stdout is not None
    child = int(parent.stdout.readline())
    try:
        assert running(child)
        parent.send_signal(signal.SIGKILL)
        parent.wait()
        deadline = time.monotonic() + 5
        while running(child) and time.monotonic() < deadline:
            time.sleep(0.05)
        assert running(child) is outlives
    finally:
        if running(child):
            os.kill(child, signal.SIGKILL)
