"""The one console command, ``abm``: a subcommand per service plus operations tools.

Each subcommand builds its settings here, in ``main()``, and passes them down; imports are
lazy so that ``abm api`` does not load the consumer stack and vice versa.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

Command = Callable[[argparse.Namespace], int | None]


def _ingest(_args: argparse.Namespace) -> None:
    from services.ingest.app import main

    main()


def _api(_args: argparse.Namespace) -> None:
    from services.api.app import main

    main()


def _intent(args: argparse.Namespace) -> int | None:
    action = args.action or "run"
    if action == "score":
        return _intent_score(args)
    if action == "evaluate":
        return _intent_evaluate(args)
    from services.intent.service import main

    main()
    return None


def _intent_score(args: argparse.Namespace) -> int:
    from services.intent.config import load_intent_config
    from services.intent.replay import score_file

    if args.output is None:
        print("usage: abm intent score INPUT.csv OUTPUT.csv", file=sys.stderr)
        return 2
    config = load_intent_config(args.config).model_copy(
        update={"bucket_minutes": args.bucket_minutes}
    )
    rows = score_file(args.input, args.output, config)
    print(f"scored {rows} rows -> {args.output}")
    return 0


def _intent_evaluate(args: argparse.Namespace) -> int:
    from services.intent import nab
    from services.intent.config import load_intent_config
    from services.intent.replay import evaluate, render

    nab_dir: Path = args.nab_dir or nab.DEFAULT_NAB_DIR
    if not (nab_dir / "windows.json").exists():
        print(f"no NAB data in {nab_dir} (expected windows.json)", file=sys.stderr)
        return 2
    config = load_intent_config(args.config).model_copy(
        update={"bucket_minutes": args.bucket_minutes}
    )
    published = nab.PUBLISHED if args.published else ()
    print(render(evaluate(nab_dir, config, published)))
    return 0


def _funnel(_args: argparse.Namespace) -> None:
    from services.funnel.service import main

    main()


def _stitch(_args: argparse.Namespace) -> None:
    from services.stitch.service import main

    main()


def _migrate(_args: argparse.Namespace) -> None:
    from services.kit.migrate import upgrade
    from services.kit.settings import CommonSettings

    upgrade(CommonSettings().database_url)
    print("database at head")


def _topics(_args: argparse.Namespace) -> None:
    from services.kit.kafka import ensure_topics
    from services.kit.settings import CommonSettings

    created = asyncio.run(ensure_topics(CommonSettings().kafka_bootstrap))
    print(f"created: {', '.join(created) or 'none (all exist)'}")


def _up(args: argparse.Namespace) -> int:
    from services.supervisor import UpSettings, up

    return up(UpSettings(), simulate_accounts=args.simulate)


def _simulate(args: argparse.Namespace) -> None:
    from services.simulate.cli import run_simulation

    run_simulation(
        ingest_url=args.ingest_url,
        write_key=args.write_key,
        accounts=args.accounts,
        seed=args.seed,
        rate=args.rate,
    )


def _icp_suggest(args: argparse.Namespace) -> None:
    from services.funnel.icp_cli import run_icp_suggest
    from services.funnel.icp_suggest import Thresholds
    from services.kit.settings import CommonSettings

    thresholds = Thresholds(min_support=args.min_support, min_lift=args.min_lift)
    run_icp_suggest(CommonSettings(), args.out, thresholds)


def _replay(args: argparse.Namespace) -> int:
    from services.funnel.replay_cli import ReplayTargetNotEmpty, run_replay
    from services.funnel.settings import FunnelSettings

    settings = FunnelSettings()
    try:
        run_replay(
            settings,
            args.events,
            args.config,
            args.out,
            args.compare,
            into=args.into,
            timeline_days=settings.funnel_timeline_days,
        )
    except ReplayTargetNotEmpty as error:
        print(f"abm replay --into: {error}", file=sys.stderr)
        return 2
    return 0


def _schemas(args: argparse.Namespace) -> int:
    from schemas.export import JSON_DIR, export, render, schema_documents

    if args.check:
        stale = [n for n, d in schema_documents().items() if _read(JSON_DIR / n) != render(d)]
        if stale:
            print(f"stale JSON Schemas: {', '.join(stale)}; run `abm schemas`", file=sys.stderr)
            return 1
        return 0
    for path in export():
        print(path)
    return 0


def _ip_ranges_load(args: argparse.Namespace) -> int:
    from services.kit.ip_ranges import LoadMode, load_csv_file
    from services.kit.settings import CommonSettings

    if not args.file.is_file():
        print(f"no such file: {args.file}", file=sys.stderr)
        return 2
    mode: LoadMode = "replace" if args.replace else "merge"
    url = CommonSettings().database_url
    parsed, summary = asyncio.run(load_csv_file(url, args.file, mode, args.label))
    for error in parsed.errors:
        print(f"{args.file}:{error.line}: {error.reason}", file=sys.stderr)
    if parsed.bad > len(parsed.errors):
        print(f"... and {parsed.bad - len(parsed.errors)} more bad rows", file=sys.stderr)
    if mode == "replace" and not parsed.rows:
        print("no valid row: nothing replaced", file=sys.stderr)
        return 1
    print(
        f"loaded {len(parsed.rows)} ranges ({mode}), skipped {parsed.bad} bad rows; "
        f"the table holds {summary.ranges} ranges of {summary.domains} domains"
    )
    return 1 if parsed.bad else 0


def _read(path: Path) -> str | None:
    return path.read_text() if path.exists() else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="abm", description="abm-stream: real-time ABM signals")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, handler, text in (
        ("ingest", _ingest, "run the collection HTTP service"),
        ("funnel", _funnel, "run the funnel consumer"),
        ("stitch", _stitch, "run the visitor-stitching consumer (de-anonymisation)"),
        ("api", _api, "run the API gateway"),
        ("migrate", _migrate, "migrate the database to the latest schema"),
        ("topics", _topics, "create the Kafka topics that are missing"),
    ):
        commands.add_parser(name, help=text).set_defaults(handler=handler)
    _add_intent(commands)
    _add_ip_ranges(commands)
    up = commands.add_parser("up", help="run everything locally on the embedded defaults")
    up.add_argument(
        "--simulate",
        type=int,
        default=0,
        metavar="N",
        help="also simulate traffic for N accounts once the services are ready",
    )
    up.set_defaults(handler=_up)
    simulate = commands.add_parser("simulate", help="post realistic traffic through ingest")
    simulate.add_argument("--ingest-url", default="http://127.0.0.1:8001")
    simulate.add_argument("--write-key", default="dev-write-key")
    simulate.add_argument("--accounts", type=int, default=50)
    simulate.add_argument("--seed", type=int, default=7)
    simulate.add_argument(
        "--rate",
        type=float,
        default=None,
        metavar="MSG_PER_S",
        help="cap the sending rate (default: as fast as ingest accepts)",
    )
    simulate.set_defaults(handler=_simulate)
    icp = commands.add_parser("icp", help="ideal customer profile tools")
    icp_commands = icp.add_subparsers(dest="icp_command", required=True, metavar="ACTION")
    suggest = icp_commands.add_parser(
        "suggest", help="propose ICP criteria from the accounts that renewed at least once"
    )
    suggest.add_argument("--out", type=Path, default=Path("icp-suggested.json"))
    suggest.add_argument("--min-support", type=float, default=0.2)
    suggest.add_argument("--min-lift", type=float, default=1.3)
    suggest.set_defaults(handler=_icp_suggest)
    replay = commands.add_parser(
        "replay", help="rebuild the funnel from history under a configuration; compare with live"
    )
    replay.add_argument("--events", type=Path, help="a JSON-lines event file (default: the topics)")
    replay.add_argument("--config", type=Path, help="a funnel configuration to back-test")
    replay.add_argument("--out", type=Path, help="write the replayed states (JSON lines)")
    replay.add_argument("--compare", action="store_true", help="diff stages and tiers with live")
    replay.add_argument(
        "--into",
        metavar="DATABASE_URL",
        help="write all the replayed funnel state (accounts, history, KPI facts, change feed, "
        "timeline) into this new database, for the API to serve: a back-test of the KPIs",
    )
    replay.set_defaults(handler=_replay)
    schemas = commands.add_parser("schemas", help="export the event JSON Schemas")
    schemas.add_argument("--check", action="store_true", help="fail if the files are stale")
    schemas.set_defaults(handler=_schemas)
    return parser


def _add_intent(commands: Any) -> None:
    """``abm intent [run]`` runs the service; ``score`` and ``evaluate`` run the detector
    over files (``--bucket-minutes`` defaults to the NAB benchmark's 5)."""
    intent = commands.add_parser("intent", help="run the surge-detection consumer (or score)")
    intent.add_argument("action", nargs="?", choices=("run", "score", "evaluate"))
    intent.add_argument("input", nargs="?", type=Path, help="score: timestamp,value CSV")
    intent.add_argument("output", nargs="?", type=Path, help="score: timestamp,anomaly_score")
    intent.add_argument("--nab-dir", type=Path, default=None, help="evaluate: NAB data")
    intent.add_argument("--published", action="store_true", help="evaluate: also published")
    intent.add_argument("--config", type=Path, default=None, help="intent JSON config")
    intent.add_argument("--bucket-minutes", type=int, default=5, help="score/evaluate: row size")
    intent.set_defaults(handler=_intent)


def _add_ip_ranges(commands: Any) -> None:
    """``abm ip-ranges load FILE.csv``: company IP ranges (``cidr,domain[,confidence]``)."""
    ip_ranges = commands.add_parser("ip-ranges", help="company IP ranges for identification")
    actions = ip_ranges.add_subparsers(dest="ip_ranges_command", required=True, metavar="ACTION")
    load = actions.add_parser(
        "load", help="load a CSV of cidr,domain[,confidence]; bad rows are listed and skipped"
    )
    load.add_argument("file", type=Path, metavar="FILE.csv")
    load.add_argument(
        "--replace", action="store_true", help="remove every range the file does not hold"
    )
    load.add_argument("--label", default=None, help="where the ranges come from (default: file)")
    load.set_defaults(handler=_ip_ranges_load)


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    handler: Command = args.handler
    raise SystemExit(handler(args) or 0)


if __name__ == "__main__":
    main()
