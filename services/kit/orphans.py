"""Child processes that do not outlive their parent, even one killed with SIGKILL.

`abm up` stops its children on Ctrl-C, SIGTERM and SIGHUP; nothing can run after SIGKILL
(an OOM kill, `kill -9`, a CI timeout). Linux can still stop them: ``PR_SET_PDEATHSIG``
has the kernel send the child SIGTERM when its parent dies. Elsewhere children are left
as before.

The signal follows the *thread* that started the child: start these children from the
main thread.
"""

from __future__ import annotations

import ctypes
import os
import signal
import sys
from collections.abc import Callable

PR_SET_PDEATHSIG = 1


def terminated_with_parent() -> Callable[[], None] | None:
    """A ``preexec_fn`` for ``subprocess.Popen``: the child gets SIGTERM when this process
    dies. None where the kernel cannot do it (not Linux, or no C library found)."""
    if not sys.platform.startswith("linux"):
        return None
    try:
        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return None
    parent = os.getpid()

    def arm() -> None:  # in the child, between fork and exec: one C call, one pid check
        prctl(PR_SET_PDEATHSIG, signal.SIGTERM)
        if os.getppid() != parent:  # the parent died before the signal was armed
            os._exit(1)

    return arm
