"""Instructions per event of the funnel's pure core, counted by valgrind (callgrind).

Wall-clock timings of the core on these shared machines swing by 15% between two runs of
the same code minutes apart, more than most changes to the core gain or lose. The number
of instructions the interpreter executes does not swing: it is the same in every run of
the same code (the stream is generated from a fixed seed), so two versions of the core
compare exactly, here or on any machine with valgrind.

    python -m bench.instructions                     # this checkout
    python -m bench.instructions --against HEAD~1    # and another commit, side by side

The workload runs the core over the stream in batches of 1,000 events, with the
collector settings of the services (``gc_tuning``). Start-up (imports, generating the
stream) is taken out by counting one pass and four, and dividing the difference by
three passes' events. Under callgrind the core runs about 50 times slower: a count
takes a few minutes.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
WORKLOAD = """
import sys
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events_with_facts
from services.kit.gc_tuning import tune_for_throughput
from tests.streams import generate

events = generate(accounts=int(sys.argv[1]), events_per_account=15, seed=2)
config = FunnelConfig()
tune_for_throughput()
for _ in range(int(sys.argv[2])):
    states = {}
    for start in range(0, len(events), 1000):
        changed, _, _ = apply_events_with_facts(states, events[start : start + 1000], config)
        states.update(changed)
print(len(events))
"""
_COLLECTED = re.compile(r"Collected\s*:\s*(\d+)")


def _count(tree: Path, accounts: int, passes: int) -> tuple[int, int]:
    """(instructions executed, events per pass) of the workload run from ``tree``."""
    # A fixed hash seed: string hashes steer dict probing, a few thousand instructions.
    env = {**os.environ, "PYTHONPATH": str(tree), "PYTHONHASHSEED": "0"}
    command = [
        "valgrind",
        "--tool=callgrind",
        "--callgrind-out-file=/dev/null",
        sys.executable,
        "-c",
        WORKLOAD,
        str(accounts),
        str(passes),
    ]
    done = subprocess.run(command, cwd=tree, env=env, capture_output=True, text=True, check=True)
    found = _COLLECTED.search(done.stderr)
    if found is None:
        raise RuntimeError(f"no instruction count from callgrind: {done.stderr[-1000:]}")
    return int(found.group(1)), int(done.stdout.split()[-1])


def instructions_per_event(tree: Path, accounts: int) -> float:
    one, events = _count(tree, accounts, 1)
    four, _ = _count(tree, accounts, 4)
    return (four - one) / (3 * events)


def _checkout(ref: str, into: Path) -> None:
    subprocess.run(
        ["git", "worktree", "add", "--detach", str(into), ref],
        cwd=ROOT,
        check=True,
        capture_output=True,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--accounts", type=int, default=300, help="accounts in the stream")
    parser.add_argument("--against", metavar="REF", help="also count a git commit's core")
    args = parser.parse_args(argv)
    if shutil.which("valgrind") is None:
        print("valgrind is not installed (Debian package valgrind)", file=sys.stderr)
        return 2
    counted = {"this checkout": instructions_per_event(ROOT, args.accounts)}
    if args.against:
        scratch = Path(tempfile.mkdtemp(prefix="abm-instructions-"))
        tree = scratch / "tree"
        try:
            _checkout(args.against, tree)
            counted[args.against] = instructions_per_event(tree, args.accounts)
        finally:
            remove = ["git", "worktree", "remove", "--force", str(tree)]
            subprocess.run(remove, cwd=ROOT, check=False, capture_output=True)
            shutil.rmtree(scratch, ignore_errors=True)
    mine = counted["this checkout"]
    for name, per_event in counted.items():
        print(f"{name}: {per_event:,.0f} instructions per event ({per_event / mine:.3f}x)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
