"""`abm intent score` and `abm intent evaluate` (the service itself: `abm intent [run]`)."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

from services.cli import build_parser, main


def test_intent_without_an_action_runs_the_service() -> None:
    for argv in (["intent"], ["intent", "run"]):
        args = build_parser().parse_args(argv)
        assert args.command == "intent"
        assert args.action in (None, "run")


def test_score_writes_one_score_in_0_1_per_row_in_order(tmp_path: Path) -> None:
    source, target = tmp_path / "in.csv", tmp_path / "out.csv"
    rows = [(f"2015-03-0{1 + i // 288} {i % 288 // 12:02d}:{i % 12 * 5:02d}:00", 3 + i % 4)
            for i in range(2000)]  # fmt: skip
    rows[1500] = (rows[1500][0], 400)
    with source.open("w", newline="") as handle:
        csv.writer(handle).writerows([("timestamp", "value"), *rows])

    with pytest.raises(SystemExit) as done:
        main(["intent", "score", str(source), str(target)])
    assert done.value.code == 0

    with target.open(newline="") as handle:
        written = list(csv.DictReader(handle))
    assert [r["timestamp"] for r in written] == [t for t, _ in rows]
    scores = [float(r["anomaly_score"]) for r in written]
    assert all(0.0 <= s <= 1.0 for s in scores)
    assert scores[1500] > 0.6
    assert max(scores[:1500]) < 0.6


def test_evaluate_says_when_the_benchmark_is_missing(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as done:
        main(["intent", "evaluate", "--nab-dir", str(tmp_path)])
    assert done.value.code == 2
    assert "windows.json" in capsys.readouterr().err
