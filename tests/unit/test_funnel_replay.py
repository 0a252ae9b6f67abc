"""`abm replay`'s core: the same answer as the pure core, and a back-test of a change."""

from __future__ import annotations

from pathlib import Path

from schemas.events import encode_event
from services.funnel.config import FunnelConfig
from services.funnel.processing import apply_events
from services.funnel.replay import compare, read_event_file, replay, summary
from tests.streams import generate


def test_replay_dedups_skips_garbage_and_matches_the_pure_core(tmp_path: Path) -> None:
    events = generate(accounts=80, events_per_account=10, seed=9)
    file = tmp_path / "events.jsonl"
    file.write_bytes(b"\n".join([*(encode_event(e) for e in events), b"{broken"]) + b"\n")
    result = replay(read_event_file(file), FunnelConfig(), batch=37)
    unique = list({e.event_id: e for e in events}.values())
    expected, changes = apply_events({}, unique, FunnelConfig())
    assert result.states == expected and result.transitions == len(changes)
    assert (result.applied, result.duplicates, result.undecodable) == (
        len(unique),
        len(events) - len(unique),
        1,
    )
    assert summary(result)["accounts"] == len(expected)


def test_a_stricter_threshold_is_back_tested_against_live() -> None:
    # Let fit decide targeting (the generator sets explicit targets), then raise the bar.
    by_fit = [
        e.model_copy(update={"target": None}) if e.type == "account_upserted" else e
        for e in generate(accounts=60, events_per_account=8, seed=2)
    ]
    events = [encode_event(e) for e in by_fit]
    live_run = replay(events, FunnelConfig())
    live = {d: (s.stage.value if s.stage else None, s.tier) for d, s in live_run.states.items()}
    assert compare(live_run.states, live).stage_changes == {}
    in_funnel = sum(1 for s in live_run.states.values() if s.stage)
    assert in_funnel > 30, "the default threshold lets these accounts in"
    strict = replay(events, FunnelConfig(fit_threshold=100))  # their fit is 75: none qualifies
    diff = compare(strict.states, live)
    kept = [s.stage for s in strict.states.values() if s.stage]
    assert all(stage in ("won", "retention", "expansion") for stage in kept), "customers stay"
    assert sum(diff.stage_changes.values()) + len(kept) == in_funnel
    assert all(after is None for _, after in diff.stage_changes)
